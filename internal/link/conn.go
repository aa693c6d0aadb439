package link

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// readMessage reads one message into buf (grown as needed) and returns its
// type and body, which alias buf.
func readMessage(r *bufio.Reader, buf []byte) (byte, []byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 1 || n > MaxMessage {
		return 0, nil, buf, fmt.Errorf("%w: message length %d", ErrProtocol, n)
	}
	size := int(n) - 1
	if cap(buf) < size {
		buf = make([]byte, size, size+size/4)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the header came: this is no clean end
		}
		return 0, nil, buf, fmt.Errorf("read message body: %w", err)
	}
	return hdr[4], buf, buf, nil
}

func readU32(b []byte) (uint32, []byte, error) {
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("%w: short u32", ErrProtocol)
	}
	return binary.BigEndian.Uint32(b), b[4:], nil
}
