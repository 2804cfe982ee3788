package looptls

import (
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Shim is the net.Conn a crypto/tls.Conn sits on: the TCP connection
// itself during the handshake, the loop's gnet.Conn after Attach.
type Shim struct {
	tcp     net.Conn  // handshake mode: blocking reads and writes
	loop    gnet.Conn // loop mode, once attached
	pending *[]byte   // records written in loop mode, not yet handed to gnet (see flush); nil when none
}

// NewShim returns a shim over tcp, in handshake mode.
func NewShim(tcp net.Conn) *Shim { return &Shim{tcp: tcp} }

// Attach switches the shim to loop mode on c (tcp is not used again: the
// loop holds a duplicate of its descriptor).
func (s *Shim) Attach(c gnet.Conn) {
	s.loop = c
	s.tcp = nil
}

// errWouldBlock is the loop-mode answer when gnet holds no byte: crypto/tls
// keeps no temporary error, so the next read tries again.
type errWouldBlock struct{}

func (errWouldBlock) Error() string   { return "looptls: no more bytes yet" }
func (errWouldBlock) Timeout() bool   { return true }
func (errWouldBlock) Temporary() bool { return true }

// Read takes what gnet has buffered (loop mode), or reads the socket
// (handshake mode).
func (s *Shim) Read(p []byte) (int, error) {
	if s.loop == nil {
		return s.tcp.Read(p)
	}
	buf, _ := s.loop.Peek(min(len(p), s.loop.InboundBuffered())) // no more than fits: gnet may gather a wrapped buffer into a copy
	n := copy(p, buf)
	if n == 0 {
		return 0, errWouldBlock{}
	}
	_, _ = s.loop.Discard(n)
	return n, nil
}

// Write sends a record (handshake mode), or gathers it for flush (loop
// mode: crypto/tls writes a message as many records, and one gnet write
// for all of them is one system call).
func (s *Shim) Write(p []byte) (int, error) {
	if s.loop == nil {
		return s.tcp.Write(p)
	}
	if s.pending == nil {
		s.pending = getBuf()
	}
	*s.pending = append(*s.pending, p...)
	return len(p), nil
}

// flush hands the gathered records to gnet (which copies what the socket
// does not take at once) and gives the buffer back to its pool: an idle
// session holds none. The error is gnet's (it closed the connection).
func (s *Shim) flush() error {
	if s.pending == nil {
		return nil
	}
	_, err := s.loop.Write(*s.pending)
	s.drop()
	return err
}

// drop gives the gathered records' buffer back, unwritten.
func (s *Shim) drop() {
	if s.pending != nil {
		putBuf(s.pending)
		s.pending = nil
	}
}

// pendingLen is how many gathered bytes wait for flush.
func (s *Shim) pendingLen() int {
	if s.pending == nil {
		return 0
	}
	return len(*s.pending)
}

// Close closes the TCP connection in handshake mode (a failed or timed
// out handshake); in loop mode the gnet connection is closed by its owner.
func (s *Shim) Close() error {
	if s.loop == nil && s.tcp != nil {
		return s.tcp.Close()
	}
	return nil
}

func (s *Shim) LocalAddr() net.Addr {
	if s.loop != nil {
		return s.loop.LocalAddr()
	}
	return s.tcp.LocalAddr()
}

func (s *Shim) RemoteAddr() net.Addr {
	if s.loop != nil {
		return s.loop.RemoteAddr()
	}
	return s.tcp.RemoteAddr()
}

// SetDeadline and its kin bound the handshake; on the loop nothing blocks.
func (s *Shim) SetDeadline(t time.Time) error {
	if s.loop == nil {
		return s.tcp.SetDeadline(t)
	}
	return nil
}

func (s *Shim) SetReadDeadline(t time.Time) error {
	if s.loop == nil {
		return s.tcp.SetReadDeadline(t)
	}
	return nil
}

func (s *Shim) SetWriteDeadline(t time.Time) error {
	if s.loop == nil {
		return s.tcp.SetWriteDeadline(t)
	}
	return nil
}
