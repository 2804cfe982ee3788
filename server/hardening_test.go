package server

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/conformance"
)

// Regression tests for the hardening issue (defects 3, 5 and 12).

// A protocol error that arrives after our close frame went out is answered
// by closing TCP, never by a second close frame.
func TestProtocolErrorWhileClosingSendsNoSecondClose(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, Config{CloseTimeout: 5 * time.Second})
	addr := srv.Addr()
	c := conformance.Dial(t, addr, 5*time.Second)
	c.Handshake(conformance.NewRequest(addr, "/"))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // sends 1001 and waits for the reply
	}()
	c.ExpectClose(conformance.CloseGoingAway)
	c.WriteFrame(conformance.Opcode(3), true, 0, true, []byte("reserved opcode")) // a protocol error
	c.ExpectTCPClosed(3 * time.Second)
}

// failingConn is a gnet connection whose writes fail the way gnet's do: the
// connection is closed, OnClose runs, inside the write.
type failingConn struct {
	gnet.Conn
	s *Session
}

func (f *failingConn) Fd() int { return -1 }
func (f *failingConn) Writev([][]byte) (int, error) {
	f.s.onClose(errors.New("broken pipe"))
	return 0, errors.New("broken pipe")
}
func (f *failingConn) RemoteAddr() net.Addr  { return &net.TCPAddr{} }
func (f *failingConn) OutboundBuffered() int { return 0 }

// Echo mode: when the write of a frame gathered in pieces fails, the
// buffer goes back to the pool once, not twice (two later sessions shared
// one buffer: "AAAABBBBaaaa").
func TestEchoFailedWriteReturnsTheBufferOnce(t *testing.T) {
	srv, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	sh := newShard(srv, nil, 0)
	s := &Session{shard: sh, state: stateOpen}
	s.timer.Owner = s
	fc := &failingConn{s: s}
	s.conn = fc
	sh.sessions[s] = struct{}{}
	srv.stats.Open.Add(1)
	sh.clients.Add(1)
	h, _ := Echo{}.Upgrade(s, nil)
	s.handler = h
	s.reader = srv.newFrameReader()
	hdr := ws.Header{OpCode: ws.OpText, Fin: true, Length: 8}
	h.Data(codec.Piece{Header: hdr, First: true, Payload: []byte("AAAA")})
	h.Data(codec.Piece{Header: hdr, Last: true, Payload: []byte("BBBB"), Offset: 4})
	a, b := bytebufferpool.Get(), bytebufferpool.Get()
	if a == b {
		t.Fatal("the pool handed out one buffer twice: it was put back twice")
	}
}

// A client that pings and never reads: past the high watermark of its
// queue of pongs it is no longer read (TCP pushes back on it), and once it
// has not read for the stall timeout it is closed as a slow consumer. The
// old code queued every pong (2.4 GB in this test).
func TestPingFloodWithoutReadingIsBounded(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, Config{FlowWindow: 64 << 10, StallTimeout: time.Second})
	addr := srv.Addr()
	c := conformance.Dial(t, addr, 5*time.Second)
	c.Handshake(conformance.NewRequest(addr, "/"))
	ping := make([]byte, 0, 64<<10)
	for len(ping)+131 <= cap(ping) {
		ping = append(ping, 0x89, 0x80|125, 1, 2, 3, 4)
		ping = append(ping, make([]byte, 125)...)
	}
	st := srv.Stats()
	deadline := time.Now().Add(20 * time.Second)
	for st.Closed(ReasonSlowConsumer) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a client sending pings and reading nothing was never closed (out %d bytes)", st.BytesOut())
		}
		_ = c.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Conn.Write(ping); err != nil && !isTimeout(err) {
			break // the server closed it
		}
	}
	waitFor(t, 10*time.Second, "slow consumer counted", func() bool { return st.Closed(ReasonSlowConsumer) == 1 })
	if st.Pauses.Load() == 0 {
		t.Fatal("the flooding client was closed without being paused first")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestPanicInLoopWorkKeepsTheLoop: a panic in work a loop runs outside a
// connection's callback (a task through Run, work deferred to the end of
// a callback) is counted and logged, and the loop goes on serving; gnet
// recovers nothing, so before, one such panic ended the process.
func TestPanicInLoopWorkKeepsTheLoop(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, Config{Loops: 1})
	sh := srv.loops[0]
	if err := sh.Run(func() { panic("in a task") }); err != nil {
		t.Fatal(err)
	}
	if err := sh.Run(func() { sh.Defer(func() { panic("in deferred work") }) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "two panics counted", func() bool { return srv.Stats().Panics.Load() == 2 })
	addr := srv.Addr()
	c := conformance.Dial(t, addr, 5*time.Second)
	c.Handshake(conformance.NewRequest(addr, "/"))
	c.Write(conformance.Masked(conformance.OpText, true, []byte("still serving")))
	c.ExpectMessage(conformance.OpText, []byte("still serving"))
}
