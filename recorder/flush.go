package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"callrec"
	"callrec/internal/link"
	"callrec/recorder/wav"
)

// AudioFormat names how recordings are stored: stereo μ-law WAV.
const AudioFormat = "wav/mulaw-stereo"

// HeaderSize is the size of our WAV header.
const HeaderSize = wav.HeaderSize

// Run writes, syncs and acknowledges audio every FlushInterval until ctx is
// done; then it finishes every recording still open as interrupted.
func (n *Node) Run(ctx context.Context) error {
	t := time.NewTicker(n.cfg.FlushInterval)
	defer t.Stop()
	lastCheckpoint := time.Now()
	for {
		select {
		case <-ctx.Done():
			n.shutdown()
			return nil
		case <-t.C:
		}
		n.flushAll()
		if time.Since(lastCheckpoint) >= n.cfg.CheckpointInterval {
			lastCheckpoint = time.Now()
			if err := n.checkpoint(context.WithoutCancel(ctx)); err != nil {
				n.log.Error("checkpoint accounting", callrec.LogKeyErr, err)
			}
		}
	}
}

// shutdown finishes every open recording and waits for finalizers.
func (n *Node) shutdown() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	for _, r := range n.snapshotActive() {
		r.mu.Lock()
		closing := r.closing != nil
		if !closing {
			r.closing = &link.Close{Reason: callrec.EndShutdown}
		}
		r.mu.Unlock()
		if !closing {
			n.wg.Go(func() { n.finalize(r, callrec.EndShutdown, "recorder shut down mid-stream") })
		}
	}
	n.wg.Wait()
}

// flushAll flushes every active recording, a few at a time.
func (n *Node) flushAll() {
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(n.cfg.FlushWorkers)
	for _, r := range n.snapshotActive() {
		r.mu.Lock()
		skip := r.closing != nil
		var reason, detail string
		var done bool
		switch {
		case skip:
		case r.pair != nil:
			reason, detail, done = r.pairDoneLocked(time.Now())
		default:
			s := r.srcs[0]
			if s.replier == nil && !s.detachedAt.IsZero() && time.Since(s.detachedAt) > n.cfg.ResumeGrace {
				reason, detail, done = callrec.EndLinkLost, fmt.Sprintf("adapter did not come back within %v", n.cfg.ResumeGrace), true
			}
		}
		if done {
			r.closing = &link.Close{Reason: reason, Detail: detail}
		}
		r.mu.Unlock()
		if done {
			n.wg.Go(func() { n.finalize(r, reason, detail) })
			continue
		}
		if skip {
			continue
		}
		g.Go(func() error {
			if err := r.flush(false); err != nil {
				n.fail(r, err)
			} else {
				r.sendAcks()
			}
			return nil
		})
	}
	_ = g.Wait()
	n.m.flushSeconds.Observe(time.Since(start).Seconds())
}

// flush writes what can be written of the window and the pending patches,
// updates the header, syncs, and marks the acknowledged records durable.
func (r *recording) flush(final bool) error {
	r.ioMu.Lock()
	defer r.ioMu.Unlock()
	if r.finished {
		return nil
	}
	r.mu.Lock()
	f := r.flushPointLocked(final) // may choose a merged file's start: first
	from := r.win.base
	r.out = r.win.take(f, r.out[:0])
	patches := r.patches
	r.patches = nil
	popped := false
	for _, s := range r.srcs {
		if q := s.pending.pop(f); q > 0 {
			s.popped, popped = q, true
		}
	}
	fileBase := r.fileBase
	var written int64
	for _, ts := range r.tracks {
		written += ts.received
	}
	delta := written - r.reported
	r.reported = written
	r.mu.Unlock()

	if len(r.out) == 0 && len(patches) == 0 && !final {
		if popped {
			r.markDurable()
		}
		return nil
	}
	if len(r.out) > 0 {
		if _, err := r.blob.WriteAt(r.out, HeaderSize+2*(from-fileBase)); err != nil {
			return fmt.Errorf("write audio: %w", err)
		}
	}
	for _, p := range patches {
		if err := r.applyPatch(p, fileBase); err != nil {
			return err
		}
	}
	data := 2 * (f - fileBase)
	r.hdr = wav.AppendHeader(r.hdr[:0], callrec.NumTracks, callrec.SampleRate, data)
	if _, err := r.blob.WriteAt(r.hdr, 0); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	if r.n.cfg.Fsync {
		syncStart := time.Now()
		if err := r.blob.Sync(); err != nil {
			return fmt.Errorf("sync audio: %w", err)
		}
		r.n.m.fsyncSeconds.Observe(time.Since(syncStart).Seconds())
	}
	r.mu.Lock() // snapshotLocked reads synced holding only mu
	r.synced = data
	r.mu.Unlock()
	r.n.m.bytesWritten.Add(float64(len(r.out)))
	r.n.m.frames.Add(float64(delta))
	if popped {
		r.markDurable()
	}
	return nil
}

// applyPatch writes a late frame into its place in the file.
func (r *recording) applyPatch(p patch, fileBase int64) error {
	off := HeaderSize + 2*(p.pos-fileBase)
	buf := make([]byte, 2*len(p.data))
	if _, err := r.blob.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read for patch: %w", err)
	}
	for i, b := range p.data {
		buf[2*i+int(p.t)] = b
	}
	if _, err := r.blob.WriteAt(buf, off); err != nil {
		return fmt.Errorf("write patch: %w", err)
	}
	r.n.m.patched.Inc()
	return nil
}

// markDurable marks what the last flush popped from each source's ack
// queue as durable.
func (r *recording) markDurable() {
	r.mu.Lock()
	for _, s := range r.srcs {
		s.durable = max(s.durable, s.popped)
	}
	r.mu.Unlock()
}

// sendAcks acknowledges the durable records to each source's adapter, if
// it is there.
func (r *recording) sendAcks() {
	type ack struct {
		rp  *link.Replier
		seq uint64
	}
	var acks [maxSources]ack
	n := 0
	r.mu.Lock()
	for _, s := range r.srcs {
		if s.replier != nil && s.durable > s.sentAck {
			s.sentAck = s.durable
			acks[n] = ack{s.replier, s.durable}
			n++
		}
	}
	r.mu.Unlock()
	for _, a := range acks[:n] {
		a.rp.Ack(a.seq)
	}
}

// fail ends a recording whose audio cannot be written.
func (n *Node) fail(r *recording, err error) {
	r.mu.Lock()
	already := r.closing != nil
	if !already {
		r.closing = &link.Close{Reason: callrec.EndWriteError, Detail: err.Error()}
	}
	rps := r.repliersLocked()
	r.mu.Unlock()
	if already {
		return
	}
	r.log.Error("recording failed", callrec.LogKeyErr, err)
	for _, rp := range rps {
		rp.Failed(fmt.Errorf("recorder %d cannot write %s: %w", n.cfg.NodeID, r.meta.INUM, err))
	}
	n.wg.Go(func() { n.finalize(r, callrec.EndWriteError, err.Error()) })
}

// finalize writes the rest of the audio, digests the file, stores the final
// record, emits STOPPED and tells the adapter.
func (n *Node) finalize(r *recording, reason, detail string) {
	ctx := context.Background()
	// Every source ends now, before the final flush: a record arriving
	// later is not taken (so the final reply acknowledges exactly what the
	// flush wrote), and what a copy held for alignment is placed.
	r.mu.Lock()
	for _, s := range r.srcs {
		if s.cp != nil && s.cp.align == "" && len(s.cp.held) > 0 && r.pair.hasOrigin {
			r.alignLocked(s, callrec.AlignClock, s.cp.est(r))
		}
		switch {
		case s.ended():
		case s.cp == nil:
			s.endLocked(reason)
		case s.replier == nil:
			s.endLocked(callrec.EndLinkLost) // its adapter is gone
		case reason == callrec.EndStop:
			s.endLocked(endPairEnded)
		default:
			s.endLocked(reason)
		}
	}
	r.mu.Unlock()
	ferr := r.flush(true)
	r.ioMu.Lock()
	var digest string
	if ferr == nil {
		digest, ferr = digestBlob(r.blob, HeaderSize+r.synced)
	}
	if cerr := r.blob.Close(); cerr != nil && ferr == nil {
		ferr = fmt.Errorf("close audio: %w", cerr)
	}
	r.finished = true
	r.ioMu.Unlock()

	type reply struct {
		rp  *link.Replier
		seq uint64
	}
	var replies []reply
	r.mu.Lock()
	for _, s := range r.srcs {
		s.pending.pop(1 << 62)
		if s.replier == nil {
			continue
		}
		seq := s.closeSeq
		if s.cp != nil && s.closing == nil {
			// A copy still running when the pair ended: everything it sent
			// is written.
			seq = s.lastSeq
		}
		replies = append(replies, reply{s.replier, seq})
	}
	rec := r.snapshotLocked()
	r.mu.Unlock()
	rec.StoppedAt = time.Now().UTC()
	rec.Audio.SHA256 = digest
	rec.State, rec.EndReason, rec.EndDetail = callrec.StateInterrupted, reason, detail
	if reason == callrec.EndStop && ferr == nil {
		rec.State = callrec.StateComplete
	}
	if ferr != nil {
		rec.EndReason, rec.EndDetail = callrec.EndWriteError, ferr.Error()
		r.log.Error("finish recording", callrec.LogKeyErr, ferr)
	}
	n.indexMu.Lock()
	if err := n.idx.PutRecording(ctx, &rec); err != nil {
		r.log.Error("store finished recording", callrec.LogKeyErr, err)
		ferr = errors.Join(ferr, err)
	}
	n.remove(r)
	n.indexMu.Unlock()
	n.m.stopped.WithLabelValues(string(rec.State)).Inc()
	r.log.Info("recording stopped", "state", rec.State, callrec.LogKeyReason, rec.EndReason,
		"duration_ms", rec.Audio.DurationMS, "sha256", rec.Audio.SHA256)
	n.emit(ctx, callrec.RecordingStopped, rec)
	for _, x := range replies {
		if ferr != nil && reason != callrec.EndWriteError {
			x.rp.Failed(fmt.Errorf("finish %s: %w", rec.INUM, ferr))
		} else if ferr == nil {
			x.rp.Closed(link.CloseReply{INUM: rec.INUM, State: rec.State, Seq: x.seq})
		}
	}
}

// repliersLocked returns the connections of the recording's sources.
func (r *recording) repliersLocked() []*link.Replier {
	var out []*link.Replier
	for _, s := range r.srcs {
		if s.replier != nil {
			out = append(out, s.replier)
		}
	}
	return out
}

// digestBlob returns the hex SHA-256 of the first size bytes of b.
func digestBlob(b Blob, size int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(b, 0, size)); err != nil {
		return "", fmt.Errorf("digest audio: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// createBlob creates the recording's file with an empty header, synced, so
// a crash at any later point leaves a repairable file.
func (n *Node) createBlob(r *recording) error {
	b, err := n.blobs.Create(r.meta.Audio.Ref)
	if err != nil {
		return err
	}
	r.hdr = wav.AppendHeader(nil, callrec.NumTracks, callrec.SampleRate, 0)
	if _, err := b.WriteAt(r.hdr, 0); err != nil {
		b.Close()
		return fmt.Errorf("write header: %w", err)
	}
	if n.cfg.Fsync {
		if err := b.Sync(); err != nil {
			b.Close()
			return fmt.Errorf("sync header: %w", err)
		}
	}
	r.blob = b
	return nil
}

// checkpoint saves the live accounting of every active recording in one
// index transaction.
func (n *Node) checkpoint(ctx context.Context) error {
	n.indexMu.Lock()
	defer n.indexMu.Unlock()
	active := n.snapshotActive()
	if len(active) == 0 {
		return nil
	}
	recs := make([]*callrec.Recording, 0, len(active))
	for _, r := range active {
		r.mu.Lock()
		if r.closing == nil {
			s := r.snapshotLocked()
			recs = append(recs, &s)
		}
		r.mu.Unlock()
	}
	return n.idx.PutRecordings(ctx, recs)
}

// repair finishes recordings a crash left open: it repairs each file's
// header from its real length, digests it, and marks it interrupted.
func (n *Node) repair(ctx context.Context) error {
	open, err := n.idx.OpenRecordings(ctx)
	if err != nil {
		return fmt.Errorf("list open recordings: %w", err)
	}
	for _, rec := range open {
		now := time.Now().UTC()
		in := &callrec.Interruption{RepairedAt: now}
		rec.State, rec.EndReason, rec.StoppedAt, rec.UpdatedAt = callrec.StateInterrupted, callrec.EndCrash, now, now
		rec.EndDetail = "recorder stopped without finishing the recording; file repaired on restart"
		if err := n.repairBlob(rec, in); err != nil {
			rec.EndDetail = "repair failed: " + err.Error()
			n.log.Error("repair recording", callrec.LogKeyINUM, rec.INUM, callrec.LogKeyErr, err)
		}
		rec.Interrupted = in
		if err := n.idx.PutRecording(ctx, rec); err != nil {
			return fmt.Errorf("store repaired recording %s: %w", rec.INUM, err)
		}
		n.m.repaired.Inc()
		n.log.Warn("repaired interrupted recording", callrec.LogKeyINUM, rec.INUM,
			"data_bytes", rec.Audio.DataBytes, "truncated", in.TruncatedBytes)
		n.emit(ctx, callrec.RecordingStopped, *rec)
	}
	return nil
}

func (n *Node) repairBlob(rec *callrec.Recording, in *callrec.Interruption) error {
	b, err := n.blobs.OpenWrite(rec.Audio.Ref)
	if err != nil {
		return err
	}
	defer b.Close()
	size, err := b.Size()
	if err != nil {
		return err
	}
	res, err := wav.Repair(b, size)
	if err != nil {
		return err
	}
	if err := b.Sync(); err != nil {
		return fmt.Errorf("sync repaired file: %w", err)
	}
	in.HeaderBytes, in.RecoveredBytes, in.TruncatedBytes = res.ClaimedDataBytes, res.DataBytes, res.TruncatedBytes
	rec.Audio.DataBytes = res.DataBytes
	rec.Audio.DurationMS = res.DataBytes / int64(callrec.NumTracks) / callrec.SamplesPerMS
	rec.Audio.SHA256, err = digestBlob(b, HeaderSize+res.DataBytes)
	return err
}
