package recorder

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/internal/link"
	"callrec/recorder/bolt"
)

type slowBlob struct{ Blob }

func (b slowBlob) Sync() error { time.Sleep(50 * time.Millisecond); return b.Blob.Sync() }

type slowStore struct{ FileStore }

func (s slowStore) Create(ref string) (Blob, error) {
	b, err := s.FileStore.Create(ref)
	if err != nil {
		return nil, err
	}
	return slowBlob{b}, nil
}

// After copy 1 stops, copy 2 streams on; pairStopGrace later the recording
// finishes. Every record of copy 2 up to the Closed reply's Seq is
// acknowledged by that reply: its audio must be in the file.
func TestPairRegressPairFinalizeAcksUnwritten(t *testing.T) {
	dir := t.TempDir()
	idx, err := bolt.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	cfg := DefaultConfig()
	cfg.FlushInterval = 20 * time.Millisecond
	cfg.LagLimit = 100 * time.Millisecond
	store := slowStore{FileStore{Root: filepath.Join(dir, "audio")}}
	n, err := Open(context.Background(), cfg, idx, store, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = n.Run(ctx) })
	srv := link.NewServer(n, cfg.NodeID, nil)
	client := func(id string) *link.Client {
		c := link.NewClient(link.ClientConfig{AdapterID: id, Dial: func(context.Context) (net.Conn, error) {
			a, b := net.Pipe()
			go func() { _ = srv.ServeConn(ctx, b) }()
			return a, nil
		}})
		wg.Go(func() { _ = c.Run(ctx) })
		return c
	}
	ca, cb := client("A"), client("B")
	epoch := time.Now().UTC()
	info := func(k int) callrec.StreamInfo {
		return callrec.StreamInfo{StreamSID: "MZ" + string(rune('0'+k)), CallSID: "CA1", TrackNames: []string{"inbound", "outbound"},
			StartedAt: epoch, Adapter: string(rune('A' + k - 1)), Pair: &callrec.StreamPair{Group: "g", Copy: k, Copies: 2}}
	}
	s1 := ca.Open(info(1))
	time.Sleep(50 * time.Millisecond)
	s2 := cb.Open(info(2))
	const frames = 1000
	a := newCallAudio(frames, 5)
	type sent struct {
		t callrec.Track
		k int
	}
	var mu sync.Mutex
	bySeq := map[uint64]sent{}
	send := func(s *link.Stream, k int) {
		for tr := range callrec.NumTracks {
			f := callrec.Frame{Track: callrec.Track(tr), Chunk: uint32(k + 1), TimestampMS: uint32(k) * 20, Payload: a.frame(callrec.Track(tr), k)}
			if !s.Frame(&f) {
				t.Errorf("frame dropped")
			}
			if s == s2 {
				mu.Lock()
				bySeq[f.Seq] = sent{callrec.Track(tr), k}
				mu.Unlock()
			}
		}
	}
	for k := range 50 {
		send(s1, k)
		send(s2, k)
		time.Sleep(2 * time.Millisecond)
	}
	s1.Close(link.Close{Reason: callrec.EndStop})
	k := 50
	for ; k < frames; k++ {
		select {
		case <-s2.Done():
			goto done
		default:
		}
		send(s2, k)
		time.Sleep(10 * time.Millisecond)
	}
done:
	<-s1.Done()
	rep, err := s2.Result()
	if err != nil || rep == nil {
		t.Fatalf("copy 2 result %v %v", rep, err)
	}
	rec, err := n.FindRecordingByINUM(t.Context(), rep.INUM)
	if err != nil {
		t.Fatal(err)
	}
	b, _, size, err := n.OpenAudio(t.Context(), rep.INUM)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size-HeaderSize)
	if _, err := b.ReadAt(data, HeaderSize); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	b.Close()
	var ch [2][]byte
	for i, v := range data {
		ch[i%2] = append(ch[i%2], v)
	}
	missing := 0
	mu.Lock()
	for seq, f := range bySeq {
		if seq <= rep.Seq && !bytes.Contains(ch[f.t], a.frame(f.t, f.k)) {
			missing++
			t.Logf("acknowledged (Closed seq %d) but not in the file: copy 2 seq %d track %d call frame %d", rep.Seq, seq, f.t, f.k)
		}
	}
	mu.Unlock()
	t.Logf("sent copy 2 frames up to call frame %d; closed seq %d; state %s; copies %+v", k, rep.Seq, rec.State, rec.Accounting.Copies)
	if missing > 0 {
		t.Errorf("%d records acknowledged by Closed but not written", missing)
	}
	cancel()
	wg.Wait()
}
