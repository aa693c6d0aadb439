package streams

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"callrec"
	"callrec/internal/twilio"
)

// Dual-stream capture (Config.DualStreams): every decision to record starts
// DualCopies Twilio streams on the customer's call, each carrying the same
// call audio to a different media adapter, so losing one adapter, recorder
// or network path loses nothing. Copy k of the decision's stream <base>:
//
//   - is named CopyName(base, k) = "<base>-c<k>" (Twilio wants stream names
//     unique per call, nothing more);
//   - goes to PairURL(mediaURL, base, k) = "<media URL>/pair/<PathEscape(base)>/<k>",
//     which the lb maps to the k-th adapter of the pair's ranking;
//   - carries the decision's custom parameters plus pair=<base>, copy=<k>
//     and copies=<DualCopies> (callrec.ParamPair, ParamCopy, ParamCopies),
//     from which recorders merge the copies into one recording;
//   - is an intent of its own (StartKey(CopyName(base, k))): it is started,
//     retried, restarted after a stream-error ("<base>-c<k>-restart<j>",
//     keeping its URL and pair parameters) and stopped on its own.
//
// A stop decision stops whatever was started for its stream: the single
// stream, the copies, or both (after a change of the option), so turning
// the option on or off never leaves a stream running.

// DualCopies is how many copies DualStreams starts. Twilio allows four
// forked tracks per call; two both_tracks streams use them all.
const DualCopies = 2

// Name suffixes.
const (
	copySep    = "-c"       // "<base>-c<k>": copy k of a dual stream
	restartSep = "-restart" // "<name>-restart<j>": the j-th replacement of stream <name>
)

// CopyName is the Twilio stream name of copy k of the stream named base.
func CopyName(base string, k int) string { return base + copySep + strconv.Itoa(k) }

// restartName is the name of the j-th replacement of the stream named name.
func restartName(name string, j int) string { return name + restartSep + strconv.Itoa(j) }

// PairURL is the media URL copy k of the pair group is sent to:
// mediaURL + "/pair/" + url.PathEscape(group) + "/" + k, the suffix going
// before a query string (Twilio allows none, but the media adapter signs
// it that way).
func PairURL(mediaURL, group string, k int) string {
	base, query, hasQuery := strings.Cut(mediaURL, "?")
	u := strings.TrimSuffix(base, "/") + "/pair/" + url.PathEscape(group) + "/" + strconv.Itoa(k)
	if hasQuery {
		u += "?" + query
	}
	return u
}

// ParseName reads a stream name the Manager made back into the decision's
// stream name (base), the copy (0: not a copy of a dual stream) and the
// restart number (0: the original stream). A name without these suffixes
// is its own base.
func ParseName(name string) (base string, copyNum, restart int) {
	base, restart = cutNumber(name, restartSep, MaxRestarts)
	base, copyNum = cutNumber(base, copySep, callrec.MaxCopies)
	return base, copyNum, restart
}

// cutNumber splits s = prefix + sep + n (1 ≤ n ≤ limit, decimal without a
// leading zero) into prefix and n; otherwise it returns s and 0.
func cutNumber(s, sep string, limit int) (string, int) {
	i := strings.LastIndex(s, sep)
	if i <= 0 {
		return s, 0
	}
	digits := s[i+len(sep):]
	if digits == "" || digits[0] == '0' || len(digits) > 4 {
		return s, 0
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > limit || strconv.Itoa(n) != digits {
		return s, 0
	}
	return s[:i], n
}

// liveName strips a restart suffix: the name of the intent a stream (or its
// replacement) belongs to.
func liveName(name string) string {
	n, _ := cutNumber(name, restartSep, MaxRestarts)
	return n
}

// expand turns a decision's order into the orders of the streams it is
// about: the copies of a dual stream, or the order itself.
func (m *Manager) expand(ctx context.Context, o Order) ([]Order, error) {
	switch o.Kind {
	case Start:
		if !m.cfg.DualStreams {
			return []Order{o}, nil
		}
		out := make([]Order, 0, DualCopies)
		for k := 1; k <= DualCopies; k++ {
			c := o
			c.Name = CopyName(o.Name, k)
			c.Key = StartKey(c.Name)
			c.URL = PairURL(m.cfg.MediaURL, o.Name, k)
			c.Params = append(slices.Clip(o.Params),
				twilio.Param{Name: callrec.ParamPair, Value: o.Name},
				twilio.Param{Name: callrec.ParamCopy, Value: strconv.Itoa(k)},
				twilio.Param{Name: callrec.ParamCopies, Value: strconv.Itoa(DualCopies)})
			out = append(out, c)
		}
		return out, nil
	case Stop:
		names, err := m.started(ctx, o.Name)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 { // nothing saved for it: stop what this mode would have started
			names = []string{o.Name}
			if m.cfg.DualStreams {
				names = names[:0]
				for k := 1; k <= DualCopies; k++ {
					names = append(names, CopyName(o.Name, k))
				}
			}
		}
		out := make([]Order, 0, len(names))
		for _, n := range names {
			c := o
			if n != o.Name {
				c.Name, c.Key = n, StopKey(n)
			}
			out = append(out, c)
		}
		return out, nil
	}
	return []Order{o}, nil
}

// started returns the names of the streams started (or ordered) for the
// decision's stream base: base itself and any of its copies.
func (m *Manager) started(ctx context.Context, base string) ([]string, error) {
	var out []string
	for k := 0; k <= callrec.MaxCopies; k++ {
		name := base
		if k > 0 {
			name = CopyName(base, k)
		}
		_, ok, err := m.store.Get(ctx, StartKey(name))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, name)
		}
	}
	return out, nil
}
