package recorder

import (
	"context"
	"log/slog"

	"callrec"
)

// LogNotifier emits STARTED/STOPPED as structured log lines until
// consolidation consumes them.
type LogNotifier struct{ Log *slog.Logger }

var _ callrec.RecordingNotifier = LogNotifier{}

// NotifyRecording implements callrec.RecordingNotifier.
func (l LogNotifier) NotifyRecording(ctx context.Context, ev callrec.RecordingEvent) error {
	r := &ev.Recording
	attrs := []any{"event", ev.Type, callrec.LogKeyINUM, r.INUM, callrec.LogKeyCallSID, r.Stream.CallSID,
		callrec.LogKeyStreamSID, r.Stream.StreamSID, "account_sid", r.Stream.AccountSID, callrec.LogKeyNode, r.Node,
		"started_at", r.StartedAt, "custom_parameters", r.Stream.CustomParameters}
	if ev.Type == callrec.RecordingStopped {
		attrs = append(attrs, "state", r.State, "end_reason", r.EndReason, "stopped_at", r.StoppedAt,
			"duration_ms", r.Audio.DurationMS, "sha256", r.Audio.SHA256)
	}
	l.Log.InfoContext(ctx, "recording "+string(ev.Type), attrs...)
	return nil
}
