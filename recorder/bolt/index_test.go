package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/recorder/bolt"

	berrors "go.etcd.io/bbolt/errors"
)

func TestClaimNode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "index.db")
	x := openIndex(t, path)
	if err := x.ClaimNode(7); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := x.ClaimNode(7); err != nil {
		t.Fatalf("same id again: %v", err)
	}
	err := x.ClaimNode(8)
	wantCode(t, err, callrec.ECONFLICT)
	if msg := err.Error(); !strings.Contains(msg, "0007") || !strings.Contains(msg, "0008") {
		t.Errorf("conflict error %q does not name both ids", msg)
	}
	if err := x.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	x = openIndex(t, path)
	wantCode(t, x.ClaimNode(8), callrec.ECONFLICT)
	if err := x.ClaimNode(7); err != nil {
		t.Fatalf("claim after reopen: %v", err)
	}
}

func TestClaimNodeOutOfRange(t *testing.T) {
	t.Parallel()
	x := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
	for _, node := range []uint16{0, callrec.MaxNodeID + 1} {
		wantCode(t, x.ClaimNode(node), callrec.EINVALID)
	}
}

func TestOpenLocked(t *testing.T) {
	t.Parallel()
	x := newIndex(t)
	start := time.Now()
	y, err := bolt.Open(x.Path())
	if err == nil {
		_ = y.Close()
		t.Fatal("second Open of a locked index succeeded")
	}
	if !errors.Is(err, berrors.ErrTimeout) {
		t.Errorf("err = %v, want bbolt timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("second Open took %s", d)
	}
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	x, err := bolt.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := x.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := x.Counter(); err == nil {
		t.Error("Counter after Close succeeded")
	}
}

func TestCreateRecording(t *testing.T) {
	t.Parallel()
	x := newIndex(t)
	var prev uint64
	for i := range 5 {
		r := create(t, x, t0.Add(time.Duration(i)*time.Second), "CA1", "MZ1")
		n, err := callrec.ParseINUM(string(r.INUM))
		if err != nil {
			t.Fatalf("ParseINUM(%s): %v", r.INUM, err)
		}
		if n.Node() != testNode || r.Node != testNode {
			t.Errorf("inum %s node = %d, record node = %d, want %d", n, n.Node(), r.Node, testNode)
		}
		if n.Counter() <= prev {
			t.Errorf("inum %s counter %d not above %d", n, n.Counter(), prev)
		}
		prev = n.Counter()
	}
	wantCounter(t, x, 5)
}

func TestCreateRecordingSetsINUMAndNode(t *testing.T) {
	t.Parallel()
	x := newIndex(t)
	r, err := x.CreateRecording(context.Background(), func(inum callrec.INUM) *callrec.Recording {
		r := basicRecording(inum, t0, "CA1", "MZ1")
		r.INUM, r.Node = "", 0
		return r
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.INUM != mustINUM(t, 1) || r.Node != testNode {
		t.Errorf("got inum %s node %d", r.INUM, r.Node)
	}
}

func TestCounterPersists(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "index.db")
	x := openIndex(t, path)
	if err := x.ClaimNode(testNode); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		create(t, x, t0, "CA1", "MZ1")
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openIndex(t, path)
	wantCounter(t, x, 3)
	if r := create(t, x, t0, "CA1", "MZ1"); r.INUM.Counter() != 4 {
		t.Errorf("after reopen got counter %d, want 4", r.INUM.Counter())
	}
}

// TestCounterSurvivesCrash copies the file of an index that was never
// closed, as kill -9 would leave it, and checks the copy knows every INUM
// handed out.
func TestCounterSurvivesCrash(t *testing.T) {
	t.Parallel()
	x := newIndex(t)
	var last *callrec.Recording
	for range 3 {
		last = create(t, x, t0, "CA1", "MZ1")
	}
	b, err := os.ReadFile(x.Path())
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(crashed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	y := openIndex(t, crashed)
	if err := y.ClaimNode(testNode); err != nil {
		t.Fatal(err)
	}
	wantCounter(t, y, 3)
	if _, err := y.FindRecordingByINUM(context.Background(), last.INUM); err != nil {
		t.Fatalf("last recording lost: %v", err)
	}
	if r := create(t, y, t0, "CA1", "MZ1"); r.INUM.Counter() != 4 {
		t.Errorf("after crash got counter %d, want 4", r.INUM.Counter())
	}
}

func TestCreateRecordingFailureRollsBack(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		claim bool
		fill  func(callrec.INUM) *callrec.Recording
		code  string
	}{
		{"nil record", context.Background(), true, func(callrec.INUM) *callrec.Recording { return nil }, callrec.EINVALID},
		{"nil fill", context.Background(), true, nil, callrec.EINVALID},
		{"other inum", context.Background(), true, func(callrec.INUM) *callrec.Recording {
			return basicRecording(mustINUM(t, 99), t0, "CA1", "MZ1")
		}, callrec.EINVALID},
		{"bad state", context.Background(), true, func(inum callrec.INUM) *callrec.Recording {
			r := basicRecording(inum, t0, "CA1", "MZ1")
			r.State = "paused"
			return r
		}, callrec.EINVALID},
		{"zero started", context.Background(), true, func(inum callrec.INUM) *callrec.Recording {
			return basicRecording(inum, time.Time{}, "CA1", "MZ1")
		}, callrec.EINVALID},
		{"nul in sid", context.Background(), true, func(inum callrec.INUM) *callrec.Recording {
			return basicRecording(inum, t0, "CA\x001", "MZ1")
		}, callrec.EINVALID},
		{"no claim", context.Background(), false, func(inum callrec.INUM) *callrec.Recording {
			return basicRecording(inum, t0, "CA1", "MZ1")
		}, callrec.ECONFLICT},
		{"canceled", canceled, true, func(inum callrec.INUM) *callrec.Recording {
			t.Error("fill called with a canceled context")
			return nil
		}, callrec.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := openIndex(t, filepath.Join(t.TempDir(), "index.db"))
			if tt.claim {
				if err := x.ClaimNode(testNode); err != nil {
					t.Fatal(err)
				}
			}
			r, err := x.CreateRecording(tt.ctx, tt.fill)
			if r != nil {
				t.Errorf("got a recording: %+v", r)
			}
			wantCode(t, err, tt.code)
			wantCounter(t, x, 0)
			rs, total, err := x.FindRecordings(context.Background(), callrec.RecordingFilter{})
			if err != nil || total != 0 || len(rs) != 0 {
				t.Errorf("FindRecordings = %d records, total %d, err %v; want none", len(rs), total, err)
			}
			open, err := x.OpenRecordings(context.Background())
			if err != nil || len(open) != 0 {
				t.Errorf("OpenRecordings = %d, %v; want none", len(open), err)
			}
		})
	}
	if !errors.Is(func() error {
		x := newIndex(t)
		_, err := x.CreateRecording(canceled, nil)
		return err
	}(), context.Canceled) {
		t.Error("canceled CreateRecording does not wrap context.Canceled")
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	x := newIndex(t)
	r := create(t, x, t0, "CA1", "MZ1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err1 := x.FindRecordingByINUM(ctx, r.INUM)
	_, _, err2 := x.FindRecordings(ctx, callrec.RecordingFilter{})
	_, err3 := x.OpenRecordings(ctx)
	err4 := x.PutRecording(ctx, r)
	err5 := x.PutRecordings(ctx, []*callrec.Recording{r})
	for i, err := range []error{err1, err2, err3, err4, err5} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: err = %v, want context.Canceled", i+1, err)
		}
	}
}

// TestConcurrentCreate hands out INUMs from 8 goroutines at once.
func TestConcurrentCreate(t *testing.T) {
	t.Parallel()
	const workers, each = 8, 100
	x := newIndex(t)
	got := make([][]callrec.INUM, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r, err := x.CreateRecording(context.Background(), func(inum callrec.INUM) *callrec.Recording {
					return basicRecording(inum, t0.Add(time.Duration(i)*time.Millisecond), "CA1", "MZ1")
				})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				got[w] = append(got[w], r.INUM)
			}
		})
	}
	wg.Wait()
	seen := make(map[callrec.INUM]bool)
	for _, list := range got {
		for _, n := range list {
			if seen[n] {
				t.Errorf("inum %s handed out twice", n)
			}
			seen[n] = true
		}
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct inums, want %d", len(seen), workers*each)
	}
	wantCounter(t, x, workers*each)
	_, total, err := x.FindRecordings(context.Background(), callrec.RecordingFilter{CallSID: "CA1"})
	if err != nil || total != workers*each {
		t.Errorf("FindRecordings total = %d, %v; want %d", total, err, workers*each)
	}
}
