// Package rawbackend is a deliberately lenient WebSocket backend for
// tests: a goroutine per connection that completes the handshake and
// echoes every data frame back as it came (same opcode, FIN and payload,
// fragments one by one) without validating UTF-8, sizes or fragment
// order. Put behind the gateway, it makes sure that what a conformance
// test observes is the gateway's own doing. It can also be told to ignore
// pings, to test the gateway's health checks.
package rawbackend

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// Server is a running raw backend. Safe for concurrent use.
type Server struct {
	ln          net.Listener
	IgnorePings atomic.Bool // when set, pings get no pong
	// ReadDelay, when set, is slept before reading each frame: a backend
	// that reads slower than its clients send (flow control tests).
	ReadDelay atomic.Int64 // nanoseconds
	Conns     atomic.Int64 // connections accepted
	Pings     atomic.Int64 // pings received
	Pongs     atomic.Int64 // pongs received
	greeting  []byte       // written with the 101 (StartTLS)

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Start listens on a free loopback port.
func Start() (*Server, error) { return StartTLS(nil, nil) }

// StartTLS listens on a free loopback port, speaking TLS with cfg (nil:
// plain TCP). greeting, if any, is written in the same write as each
// 101 (over TLS: the same record): frames a backend sends right behind
// its handshake.
func StartTLS(cfg *tls.Config, greeting []byte) (*Server, error) {
	var ln net.Listener
	var err error
	if cfg != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", cfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, conns: make(map[net.Conn]struct{}), greeting: greeting}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, closes every connection and waits for their goroutines.
func (s *Server) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.Conns.Add(1)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	r := bufio.NewReader(c)
	if err := Handshake(c, r, s.greeting); err != nil {
		return
	}
	for {
		if d := s.ReadDelay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		h, payload, err := readFrame(r)
		if err != nil {
			return
		}
		switch h.OpCode {
		case ws.OpPing:
			s.Pings.Add(1)
			if s.IgnorePings.Load() {
				continue
			}
			h.OpCode = ws.OpPong
		case ws.OpPong:
			s.Pongs.Add(1)
			continue
		case ws.OpClose:
			_ = writeFrame(c, ws.Header{Fin: true, OpCode: ws.OpClose, Length: int64(min(len(payload), 2))}, payload[:min(len(payload), 2)])
			return
		}
		if err := writeFrame(c, h, payload); err != nil {
			return
		}
	}
}

// Handshake reads an upgrade request from r (c's reader) and accepts it on
// c, agreeing to the first subprotocol offered, with greeting (frames, or
// nothing) in the same write as the 101.
func Handshake(c net.Conn, r *bufio.Reader, greeting []byte) error {
	var block []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		block = append(block, line...)
		if len(line) <= 2 {
			break
		}
		if len(block) > 16<<10 {
			return errors.New("rawbackend: header too large")
		}
	}
	req, err := codec.ParseUpgrade(block)
	if err != nil {
		return err
	}
	protocol := ""
	if len(req.Protocols) > 0 {
		protocol = req.Protocols[0] // lenient: whatever the gateway prefers
	}
	_, err = c.Write(append(codec.AppendAccept(nil, req.Key, protocol), greeting...))
	return err
}

// readFrame reads one frame and unmasks it; nothing is validated.
func readFrame(r *bufio.Reader) (ws.Header, []byte, error) {
	var h ws.Header
	var hdr [ws.MaxHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return h, nil, err
	}
	need := 0
	switch hdr[1] & 0x7f {
	case 126:
		need = 2
	case 127:
		need = 8
	}
	if hdr[1]&0x80 != 0 {
		need += 4
	}
	if _, err := io.ReadFull(r, hdr[2:2+need]); err != nil {
		return h, nil, err
	}
	h, _, err := codec.ParseHeader(hdr[:2+need], codec.RoleServer, 0)
	var perr *codec.ProtocolError
	if err != nil && !errors.As(err, &perr) {
		return h, nil, err
	}
	if err != nil { // lenient: decode the header ourselves whatever it says
		h = ws.Header{Fin: hdr[0]&0x80 != 0, Rsv: (hdr[0] >> 4) & 7, OpCode: ws.OpCode(hdr[0] & 0xf), Masked: hdr[1]&0x80 != 0}
		switch l := hdr[1] & 0x7f; l {
		case 126:
			h.Length = int64(binary.BigEndian.Uint16(hdr[2:]))
		case 127:
			h.Length = int64(binary.BigEndian.Uint64(hdr[2:]))
		default:
			h.Length = int64(l)
		}
		if h.Masked {
			copy(h.Mask[:], hdr[2+need-4:])
		}
	}
	if h.Length > 64<<20 {
		return h, nil, errors.New("rawbackend: frame too large for a test")
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(r, payload); err != nil {
		return h, nil, err
	}
	if h.Masked {
		codec.Mask(payload, h.Mask, 0)
	}
	return h, payload, nil
}

func writeFrame(c net.Conn, h ws.Header, payload []byte) error {
	h.Masked = false
	h.Length = int64(len(payload))
	buf := make([]byte, codec.MaxHeaderSize+len(payload))
	n := codec.PutHeader(buf, h)
	n += copy(buf[n:], payload)
	_, err := c.Write(buf[:n])
	return err
}
