package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"sync"
	"time"

	"callrec"
	"callrec/internal/link"
)

// Index is the node's recording index (recorder/bolt implements it).
type Index interface {
	ClaimNode(node uint16) error
	CreateRecording(ctx context.Context, fill func(callrec.INUM) *callrec.Recording) (*callrec.Recording, error)
	PutRecording(ctx context.Context, r *callrec.Recording) error
	PutRecordings(ctx context.Context, rs []*callrec.Recording) error
	FindRecordingByINUM(ctx context.Context, inum callrec.INUM) (*callrec.Recording, error)
	FindRecordings(ctx context.Context, f callrec.RecordingFilter) ([]*callrec.Recording, int, error)
	OpenRecordings(ctx context.Context) ([]*callrec.Recording, error)
}

// Config configures a recorder node.
type Config struct {
	NodeID uint16
	// FlushInterval is how often audio is written, synced and acknowledged.
	FlushInterval time.Duration
	// Fsync syncs files before acknowledging (off only for benchmarks of
	// the rest of the path).
	Fsync bool
	// LagLimit is how long audio is held back waiting for a lagging track
	// or a late frame before silence is written in its place.
	LagLimit time.Duration
	// ResumeGrace is how long a stream whose adapter connection broke waits
	// for the adapter to come back before it is closed as interrupted.
	ResumeGrace time.Duration
	// CheckpointInterval is how often the accounting of active recordings
	// is saved to the index (what a crash can lose of the accounting).
	CheckpointInterval time.Duration
	// FlushWorkers bounds concurrent file flushes.
	FlushWorkers int
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		NodeID:             1,
		FlushInterval:      time.Second,
		Fsync:              true,
		LagLimit:           time.Second,
		ResumeGrace:        30 * time.Second,
		CheckpointInterval: 5 * time.Second,
		FlushWorkers:       4,
	}
}

// Node is a recorder: it assigns INUMs, writes recordings and indexes them.
type Node struct {
	cfg        Config
	idx        Index
	blobs      BlobStore
	notify     callrec.RecordingNotifier
	log        *slog.Logger
	m          *metrics
	lagSamples int64

	// indexMu orders the periodic checkpoint (snapshot, then write) with
	// finalize's write, so a stale snapshot never overwrites a final record.
	indexMu sync.Mutex

	mu     sync.Mutex
	active map[callrec.INUM]*recording
	byKey  map[link.StreamKey]*source
	byPair map[string]*recording // merged recordings of dual-stream pairs
	closed bool
	// pairMu serialises opening streams of pairs, so two copies arriving
	// together make one recording.
	pairMu sync.Mutex

	wg sync.WaitGroup
}

var _ link.Handler = (*Node)(nil)

// Open starts a node on an index and blob store: it claims the node id in
// the index and repairs recordings a crash left open.
func Open(ctx context.Context, cfg Config, idx Index, blobs BlobStore, notify callrec.RecordingNotifier, log *slog.Logger, m *Metrics) (*Node, error) {
	if cfg.NodeID == 0 || cfg.NodeID > callrec.MaxNodeID {
		return nil, callrec.Errorf(callrec.EINVALID, "recorder node id %d out of range 1..%d", cfg.NodeID, callrec.MaxNodeID)
	}
	def := DefaultConfig()
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = def.FlushInterval
	}
	if cfg.LagLimit <= 0 {
		cfg.LagLimit = def.LagLimit
	}
	if cfg.ResumeGrace <= 0 {
		cfg.ResumeGrace = def.ResumeGrace
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = def.CheckpointInterval
	}
	if cfg.FlushWorkers <= 0 {
		cfg.FlushWorkers = def.FlushWorkers
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	n := &Node{
		cfg: cfg, idx: idx, blobs: blobs, notify: notify, m: m.m,
		log:        log.With(callrec.LogKeyComponent, "recorder", callrec.LogKeyNode, cfg.NodeID),
		lagSamples: int64(cfg.LagLimit / time.Millisecond * callrec.SamplesPerMS),
		active:     map[callrec.INUM]*recording{},
		byKey:      map[link.StreamKey]*source{},
		byPair:     map[string]*recording{},
	}
	m.m.node = n
	if err := idx.ClaimNode(cfg.NodeID); err != nil {
		return nil, fmt.Errorf("claim node id: %w", err)
	}
	if err := n.repair(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// NodeID returns the node's id.
func (n *Node) NodeID() uint16 { return n.cfg.NodeID }

// Active returns the number of recordings being written.
func (n *Node) Active() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.active)
}

// OpenStream implements link.Handler.
func (n *Node) OpenStream(ctx context.Context, key link.StreamKey, req link.OpenRequest, rp *link.Replier) (link.StreamSink, link.OpenReply, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, link.OpenReply{}, callrec.Errorf(callrec.EUNAVAILABLE, "recorder is shutting down")
	}
	if s := n.byKey[key]; s != nil {
		n.mu.Unlock()
		last := s.reattach(rp)
		n.log.Info("stream resumed", callrec.LogKeyINUM, s.r.meta.INUM, "last_seq", last)
		return s, link.OpenReply{INUM: s.r.meta.INUM, LastSeq: last, Resumed: true}, nil
	}
	n.mu.Unlock()

	info := req.Info
	if err := validateInfo(&info); err != nil {
		return nil, link.OpenReply{}, err
	}
	pk := ""
	if info.Pair != nil {
		pk = pairKey(&info)
		n.pairMu.Lock()
		defer n.pairMu.Unlock()
		n.mu.Lock()
		r := n.byPair[pk]
		n.mu.Unlock()
		if r != nil {
			// byKey is set in the same critical section as the join, so a
			// finalize that follows removes it (lock order n.mu, r.mu).
			n.mu.Lock()
			s := r.join(key, info, rp)
			if s != nil {
				n.byKey[key] = s
			}
			n.mu.Unlock()
			if s != nil {
				n.m.copiesJoined.Inc()
				r.log.Info("stream joined its pair's recording", callrec.LogKeyStreamSID, info.StreamSID,
					"copy", info.Pair.Copy, "adapter", info.Adapter)
				return s, link.OpenReply{INUM: r.meta.INUM}, nil
			}
		}
	}
	now := time.Now().UTC()
	meta, err := n.idx.CreateRecording(ctx, func(inum callrec.INUM) *callrec.Recording {
		rec := &callrec.Recording{
			INUM: inum, Node: n.cfg.NodeID, State: callrec.StateRecording, Stream: info,
			StartedAt: now, UpdatedAt: now,
			Audio: callrec.AudioInfo{
				Ref:    path.Join(now.Format("2006/01/02"), string(inum)+".wav"),
				Format: AudioFormat, SampleRate: callrec.SampleRate, Channels: callrec.NumTracks,
			},
		}
		if req.Resume != nil && req.Resume.INUM != "" {
			rec.PreviousINUM = req.Resume.INUM
		}
		return rec
	})
	if err != nil {
		return nil, link.OpenReply{}, fmt.Errorf("create recording: %w", err)
	}
	r := &recording{n: n, meta: *meta,
		log: n.log.With(callrec.LogKeyINUM, meta.INUM, callrec.LogKeyCallSID, info.CallSID)}
	s := &source{r: r, key: key, info: info, replier: rp}
	r.srcs = []*source{s}
	if info.Pair != nil {
		r.pair = newPairState(pk, info.Pair.Copies)
		s.cp = &copyState{joinedAt: now}
	}
	for _, t := range info.Tracks {
		r.declareLocked(t)
	}
	if err := n.createBlob(r); err != nil {
		meta.State, meta.EndReason, meta.EndDetail = callrec.StateInterrupted, callrec.EndWriteError, err.Error()
		meta.StoppedAt = time.Now().UTC()
		if perr := n.idx.PutRecording(context.WithoutCancel(ctx), meta); perr != nil {
			err = errors.Join(err, perr)
		}
		return nil, link.OpenReply{}, err
	}
	n.mu.Lock()
	n.active[meta.INUM] = r
	n.byKey[key] = s
	if pk != "" {
		n.byPair[pk] = r
	}
	n.mu.Unlock()
	n.m.started.Inc()
	r.log.Info("recording started", callrec.LogKeyStreamSID, info.StreamSID, "tracks", info.TrackNames, "pair", info.Pair != nil)
	n.emit(ctx, callrec.RecordingStarted, *meta)
	return s, link.OpenReply{INUM: meta.INUM}, nil
}

// pairKey names the merged recording of a pair's copies: the same call,
// the same pair, the same replica (with dual recording each replica is a
// merged recording of its own, on another recorder).
func pairKey(info *callrec.StreamInfo) string {
	return info.CallSID + "\x00" + info.Pair.Group + "\x00" + strconv.Itoa(info.Replica)
}

// declareLocked announces a track on the recording.
func (r *recording) declareLocked(t callrec.Track) {
	r.declared[t] = true
	r.tracks[t].continues = r.meta.PreviousINUM != "" || r.pair != nil
	r.tracks[t].leading = r.pair != nil
}

// join adds a copy to a merged recording, unless it is finishing or full.
func (r *recording) join(key link.StreamKey, info callrec.StreamInfo, rp *link.Replier) *source {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := 0
	for _, x := range r.srcs {
		if !x.ended() {
			live++
		}
	}
	if r.closing != nil || live >= maxLive || len(r.srcs) >= maxSources {
		return nil
	}
	for _, t := range info.Tracks {
		if !r.declared[t] && !r.tracks[t].started {
			r.declareLocked(t)
		}
	}
	s := &source{r: r, key: key, info: info, replier: rp, cp: &copyState{joinedAt: time.Now().UTC()}}
	r.srcs = append(r.srcs, s)
	return s
}

func validateInfo(info *callrec.StreamInfo) error {
	if info.StreamSID == "" || info.CallSID == "" {
		return callrec.Errorf(callrec.EINVALID, "stream without stream or call SID")
	}
	if len(info.Tracks) == 0 {
		for _, name := range info.TrackNames {
			t, ok := callrec.ParseTrack(name)
			if !ok {
				return callrec.Errorf(callrec.EINVALID, "unknown track %q", name)
			}
			info.Tracks = append(info.Tracks, t)
		}
	}
	if len(info.Tracks) == 0 {
		return callrec.Errorf(callrec.EINVALID, "stream announces no track")
	}
	return nil
}

func (n *Node) emit(ctx context.Context, typ callrec.RecordingEventType, rec callrec.Recording) {
	if n.notify == nil {
		return
	}
	if err := n.notify.NotifyRecording(context.WithoutCancel(ctx), callrec.RecordingEvent{Type: typ, At: time.Now().UTC(), Recording: rec}); err != nil {
		n.log.Error("notify recording event", "type", typ, callrec.LogKeyINUM, rec.INUM, callrec.LogKeyErr, err)
	}
}

func (n *Node) remove(r *recording) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.active, r.meta.INUM)
	r.mu.Lock()
	srcs := r.srcs
	r.mu.Unlock()
	for _, s := range srcs {
		if n.byKey[s.key] == s {
			delete(n.byKey, s.key)
		}
	}
	if r.pair != nil && n.byPair[r.pair.key] == r {
		delete(n.byPair, r.pair.key)
	}
}

func (n *Node) snapshotActive() []*recording {
	n.mu.Lock()
	defer n.mu.Unlock()
	rs := make([]*recording, 0, len(n.active))
	for _, r := range n.active {
		rs = append(rs, r)
	}
	return rs
}

// FindRecordingByINUM returns a recording, live if it is being written.
func (n *Node) FindRecordingByINUM(ctx context.Context, inum callrec.INUM) (*callrec.Recording, error) {
	n.mu.Lock()
	r := n.active[inum]
	n.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		s := r.snapshotLocked()
		r.mu.Unlock()
		return &s, nil
	}
	return n.idx.FindRecordingByINUM(ctx, inum)
}

// FindRecordings searches the index; recordings being written show their
// live accounting.
func (n *Node) FindRecordings(ctx context.Context, f callrec.RecordingFilter) ([]*callrec.Recording, int, error) {
	rs, total, err := n.idx.FindRecordings(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	n.mu.Lock()
	for i, rec := range rs {
		if r := n.active[rec.INUM]; r != nil {
			r.mu.Lock()
			s := r.snapshotLocked()
			r.mu.Unlock()
			rs[i] = &s
		}
	}
	n.mu.Unlock()
	return rs, total, nil
}

// OpenAudio opens a recording's audio for reading; size is what is synced.
func (n *Node) OpenAudio(ctx context.Context, inum callrec.INUM) (Blob, *callrec.Recording, int64, error) {
	rec, err := n.FindRecordingByINUM(ctx, inum)
	if err != nil {
		return nil, nil, 0, err
	}
	b, err := n.blobs.Open(rec.Audio.Ref)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open audio of %s: %w", inum, err)
	}
	return b, rec, HeaderSize + rec.Audio.DataBytes, nil
}
