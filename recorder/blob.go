package recorder

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Blob is random-access storage for one recording's bytes. A plain file
// today; an encrypting wrapper (seekable, chunked) later. The index only
// keeps a blob's reference, never assumptions about how it is stored.
type Blob interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

// BlobStore creates and opens blobs by reference.
type BlobStore interface {
	// Create makes a new, empty blob; it fails if ref exists.
	Create(ref string) (Blob, error)
	// OpenWrite opens an existing blob for repair.
	OpenWrite(ref string) (Blob, error)
	// Open opens an existing blob read-only.
	Open(ref string) (Blob, error)
}

// FileStore keeps blobs as files under a root folder.
type FileStore struct {
	Root string
}

var _ BlobStore = FileStore{}

type fileBlob struct{ *os.File }

// Sync flushes the file's data and the metadata needed to read it back
// (its size) with fdatasync: an appended WAV needs nothing else, and the
// modification time is not worth a journal commit per flush.
func (f fileBlob) Sync() error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), serr)
	}
	return nil
}

func (f fileBlob) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (s FileStore) path(ref string) (string, error) {
	if ref == "" || filepath.IsAbs(ref) || !filepath.IsLocal(ref) {
		return "", fmt.Errorf("blob ref %q is not a local relative path", ref)
	}
	return filepath.Join(s.Root, ref), nil
}

// Create implements BlobStore.
func (s FileStore) Create(ref string) (Blob, error) {
	p, err := s.path(ref)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create blob: %w", err)
	}
	return fileBlob{f}, nil
}

// OpenWrite implements BlobStore.
func (s FileStore) OpenWrite(ref string) (Blob, error) {
	p, err := s.path(ref)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return fileBlob{f}, nil
}

// Open implements BlobStore.
func (s FileStore) Open(ref string) (Blob, error) {
	p, err := s.path(ref)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return fileBlob{f}, nil
}

// sectionReader reads the first size bytes of b.
func sectionReader(b Blob, size int64) io.ReadSeeker { return io.NewSectionReader(b, 0, size) }
