// Package recsource gives consolidation the recordings wherever they are:
// Local reads a recorder in the same process, Remote fetches from the
// recorder node an INUM names (its first four digits), over the recorder's
// HTTP API, with Range requests so playback seeks without copying the file.
package recsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"callrec"
	"callrec/consolidation/web"
	"callrec/internal/httpio"
	"callrec/recorder"
)

// Local serves recordings of a recorder node in this process.
type Local struct{ Node *recorder.Node }

var _ web.Recordings = Local{}

// Recording implements web.Recordings.
func (l Local) Recording(ctx context.Context, n callrec.INUM) (*callrec.Recording, error) {
	return l.Node.FindRecordingByINUM(ctx, n)
}

// OpenAudio implements web.Recordings.
func (l Local) OpenAudio(ctx context.Context, n callrec.INUM) (*web.Audio, error) {
	b, rec, size, err := l.Node.OpenAudio(ctx, n)
	if err != nil {
		return nil, err
	}
	return &web.Audio{ReadSeekCloser: sectionCloser{io.NewSectionReader(b, 0, size), b}, Size: size, Recording: rec}, nil
}

type sectionCloser struct {
	*io.SectionReader
	c io.Closer
}

func (s sectionCloser) Close() error { return s.c.Close() }

// Remote fetches recordings from recorder nodes over HTTP.
type Remote struct {
	// Token is sent as a Bearer token (the recorders' --api-token).
	Token  string
	Client *http.Client

	mu    sync.RWMutex
	nodes map[uint16]string // node id → base URL
}

var _ web.Recordings = (*Remote)(nil)

// NewRemote returns a Remote for the given nodes (id → base URL such as
// http://10.0.0.5:8082).
func NewRemote(nodes map[uint16]string, token string) *Remote {
	r := &Remote{Token: token, Client: &http.Client{Timeout: 0}, nodes: map[uint16]string{}}
	for id, u := range nodes {
		r.SetNode(id, u)
	}
	return r
}

// SetNode adds or moves a recorder node (memberlist calls this as nodes
// come and go); an empty URL removes it.
func (r *Remote) SetNode(id uint16, baseURL string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if baseURL == "" {
		delete(r.nodes, id)
		return
	}
	r.nodes[id] = strings.TrimSuffix(baseURL, "/")
}

func (r *Remote) base(n callrec.INUM) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, ok := r.nodes[n.Node()]
	if !ok {
		return "", callrec.Errorf(callrec.EUNAVAILABLE, "recorder node %d, which holds %s, is not known to consolidation", n.Node(), n)
	}
	return b, nil
}

func (r *Remote) do(ctx context.Context, u string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return nil, callrec.Errorf(callrec.EUNAVAILABLE, "recorder unreachable: %v", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var body httpio.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
			switch body.Error.Code {
			case callrec.EINTERNAL, callrec.EUNAUTHENTICATED, callrec.EFORBIDDEN:
				// The recorder's trouble, or ours with its token: not the
				// user's.
				body.Error.Code = callrec.EUNAVAILABLE
			}
			return nil, callrec.Errorf(body.Error.Code, "recorder: %s", body.Error.Message)
		}
		return nil, callrec.Errorf(callrec.EUNAVAILABLE, "recorder answered %s", resp.Status)
	}
	return resp, nil
}

// Recording implements web.Recordings.
func (r *Remote) Recording(ctx context.Context, n callrec.INUM) (*callrec.Recording, error) {
	base, err := r.base(n)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := r.do(ctx, base+"/api/recordings/"+string(n), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rec callrec.Recording
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		return nil, fmt.Errorf("recording %s from recorder: %w", n, err)
	}
	return &rec, nil
}

// OpenAudio implements web.Recordings: the audio is read lazily with Range
// requests from where the reader is positioned.
func (r *Remote) OpenAudio(ctx context.Context, n callrec.INUM) (*web.Audio, error) {
	rec, err := r.Recording(ctx, n)
	if err != nil {
		return nil, err
	}
	base, err := r.base(n)
	if err != nil {
		return nil, err
	}
	size := recorder.HeaderSize + rec.Audio.DataBytes
	return &web.Audio{ReadSeekCloser: &rangeReader{r: r, ctx: ctx, url: base + "/api/recordings/" + string(n) + "/audio", size: size},
		Size: size, Recording: rec}, nil
}

// rangeReader reads [0, size) of a remote file: each Read continues one
// ranged GET from the current offset; Seek drops it.
type rangeReader struct {
	r    *Remote
	ctx  context.Context
	url  string
	size int64
	off  int64
	body io.ReadCloser
}

func (rr *rangeReader) Read(p []byte) (int, error) {
	if rr.off >= rr.size {
		return 0, io.EOF
	}
	if rr.body == nil {
		resp, err := rr.r.do(rr.ctx, rr.url, http.Header{"Range": {"bytes=" + strconv.FormatInt(rr.off, 10) + "-" + strconv.FormatInt(rr.size-1, 10)}})
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return 0, callrec.Errorf(callrec.EUNAVAILABLE, "recorder ignored the range request (%s)", resp.Status)
		}
		rr.body = resp.Body
	}
	if max := rr.size - rr.off; int64(len(p)) > max {
		p = p[:max]
	}
	n, err := rr.body.Read(p)
	rr.off += int64(n)
	if errors.Is(err, io.EOF) {
		rr.body.Close()
		rr.body = nil
		if n == 0 && rr.off < rr.size {
			return 0, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

func (rr *rangeReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = rr.off + offset
	case io.SeekEnd:
		abs = rr.size + offset
	default:
		return 0, errors.New("seek: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	if abs != rr.off && rr.body != nil {
		rr.body.Close()
		rr.body = nil
	}
	rr.off = abs
	return abs, nil
}

func (rr *rangeReader) Close() error {
	if rr.body != nil {
		return rr.body.Close()
	}
	return nil
}
