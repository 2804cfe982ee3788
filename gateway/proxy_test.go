package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/rawbackend"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// idleIs is a condition: backend b holds n idle connections.
func idleIs(b *pool.Backend, n int64) func() error {
	return counter("idle", b.Idle.Load, n)
}

func TestProxyRelaysBothWays(t *testing.T) {
	g := startGateway(t, []server.Handler{nil, nil, nil}, "-loops", "2", "-pool-size", "4")
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70000, 1 << 20} {
		roundTrip(t, c, websocket.BinaryMessage, bytes.Repeat([]byte{byte(n)}, n))
		roundTrip(t, c, websocket.TextMessage, bytes.Repeat([]byte("é"), n/2))
	}
	// A fragmented message from the client reaches the backend fragment by
	// fragment; the echo backend answers it whole.
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("fragment ", 20000)
	for i := 0; i < len(want); i += 4096 {
		_, _ = w.Write([]byte(want[i:min(i+4096, len(want))]))
	}
	_ = w.Close()
	if _, got, err := c.ReadMessage(); err != nil || string(got) != want {
		t.Fatalf("fragmented echo: %d bytes, %v", len(got), err)
	}
	// Pings are answered by the proxy itself.
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	_ = c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second))
	roundTrip(t, c, websocket.TextMessage, []byte("after ping"))
	if got := <-pong; got != "are you there" {
		t.Fatalf("pong payload %q", got)
	}
}

// TestProxyReusesConnections: consecutive sessions go over the same
// backend connections, so the backend sees far fewer TCP connections
// than sessions. Reuse is not the default policy: it is asked for.
func TestProxyReusesConnections(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "1", "-pool-size", "1", "-release-policy", "reuse")
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, idleIs(b, 1))
	const sessions = 10
	for i := 0; i < sessions; i++ {
		c := dial(t, g.url("/"), nil)
		roundTrip(t, c, websocket.TextMessage, []byte("hi"))
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		expectClose(t, c, 1000)
		c.Close()
		testutil.CheckFor(t, 5*time.Second, counter("releases", b.Releases.Load, int64(i+1)))
	}
	if got := b.Leases.Load(); got != sessions {
		t.Errorf("leases = %d, want %d", got, sessions)
	}
	// Target 1 means one idle ready at all times: the first lease makes
	// reconcile dial a second; after that, releases keep both warm.
	if got := g.backends[0].Stats().Accepted.Load(); got > 2 {
		t.Errorf("backend accepted %d connections for %d sessions, want at most 2", got, sessions)
	}
	if got := b.Enrolled.Load(); got > 2 {
		t.Errorf("pool enrolled %d connections for %d sessions, want at most 2", got, sessions)
	}
}

// scriptBackend is a backend for tests: it records the text messages it
// receives and acts on a few commands; anything else is echoed.
type scriptBackend struct {
	ack string // answer to "RESET"; "" = no answer

	mu   sync.Mutex
	msgs []string
}

func (b *scriptBackend) Upgrade(s *server.Session, _ *codec.UpgradeRequest) (server.SessionHandler, error) {
	return &scriptSession{b: b, s: s}, nil
}

// scriptSession is one session of a scriptBackend: it acts on each frame
// once the frame has arrived whole.
type scriptSession struct {
	b   *scriptBackend
	s   *server.Session
	buf []byte
}

func (x *scriptSession) Opened()                           {}
func (x *scriptSession) Failing(*codec.ProtocolError) bool { return false }
func (x *scriptSession) Closed(server.CloseReason)         {}

func (x *scriptSession) Data(pc codec.Piece) bool {
	x.buf = append(x.buf, pc.Payload...)
	if !pc.Last {
		return true
	}
	p, h, s, b := x.buf, pc.Header, x.s, x.b
	x.buf = nil
	msg := string(p)
	b.mu.Lock()
	if h.OpCode == ws.OpText {
		b.msgs = append(b.msgs, msg)
	}
	b.mu.Unlock()
	switch {
	case strings.HasPrefix(msg, `{"type":"session_start"`):
		// recorded, not echoed
	case msg == "RESET":
		if b.ack != "" {
			_ = s.Write(ws.OpText, true, []byte(b.ack))
		}
	case msg == "die":
		s.Abort(server.ReasonServerClose) // TCP gone without a close frame
	case msg == "close-empty":
		_ = s.Write(ws.OpClose, true, nil) // a close frame without a code
	case strings.HasPrefix(msg, "close "): // "close CODE REASON"
		var code int
		_, _ = fmt.Sscanf(msg, "close %d", &code)
		_, reason, _ := strings.Cut(strings.TrimPrefix(msg, "close "), " ")
		s.CloseFor(ws.StatusCode(code), reason, server.ReasonServerClose)
	case strings.HasPrefix(msg, "numbered "):
		var n, size int
		_, _ = fmt.Sscanf(msg, "numbered %d %d", &n, &size)
		for i := 0; i < n; i++ {
			_ = s.Write(ws.OpBinary, true, numbered(i, size))
		}
	case msg == "flood":
		chunk := make([]byte, 64<<10)
		for i := 0; i < 256; i++ { // 16 MiB, far past the gateway's flow window
			_ = s.Write(ws.OpBinary, true, chunk)
		}
	default:
		_ = s.Write(h.OpCode, h.Fin, p)
	}
	return true
}

func (b *scriptBackend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

func (b *scriptBackend) count(msg string) int {
	n := 0
	for _, m := range b.received() {
		if m == msg {
			n++
		}
	}
	return n
}

func TestProxyReleasePolicies(t *testing.T) {
	oneSession := func(t *testing.T, g *testGateway) {
		c := dial(t, g.url("/"), nil)
		roundTrip(t, c, websocket.TextMessage, []byte("hello"))
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		expectClose(t, c, 1000)
		c.Close()
	}
	tests := []struct {
		name     string
		ack      string // the script backend's answer to RESET
		sessions int
		args     []string
		check    func(t *testing.T, b *pool.Backend, sb *scriptBackend)
	}{
		{
			name: "close", sessions: 3,
			args: []string{"-release-policy", "close"},
			check: func(t *testing.T, b *pool.Backend, _ *scriptBackend) {
				testutil.CheckFor(t, 5*time.Second, counter("connections closed", b.Closed.Load, 3))
				if got := b.Releases.Load(); got != 0 {
					t.Errorf("policy close: %d releases to idle", got)
				}
				testutil.CheckFor(t, 5*time.Second, idleIs(b, 1)) // replacements
			},
		},
		{
			name: "reset with ack", ack: "ACK", sessions: 1,
			args: []string{"-release-policy", "reset", "-reset-message", "RESET", "-reset-ack", "ACK"},
			check: func(t *testing.T, b *pool.Backend, sb *scriptBackend) {
				testutil.CheckFor(t, 5*time.Second, counter("releases after reset", b.Releases.Load, 1))
				if sb.count("RESET") != 1 || b.Closed.Load() != 0 {
					t.Errorf("reset: backend got %v, closed %d", sb.received(), b.Closed.Load())
				}
			},
		},
		{
			name: "reset with quiet period", sessions: 1,
			args: []string{"-release-policy", "reset", "-reset-message", "RESET", "-reset-quiet", "50ms"},
			check: func(t *testing.T, b *pool.Backend, _ *scriptBackend) {
				testutil.CheckFor(t, 5*time.Second, counter("releases after reset", b.Releases.Load, 1))
			},
		},
		{
			name: "reset timeout closes", sessions: 1, // the backend never acks
			args: []string{"-release-policy", "reset", "-reset-message", "RESET", "-reset-ack", "ACK", "-reset-timeout", "100ms"},
			check: func(t *testing.T, b *pool.Backend, _ *scriptBackend) {
				testutil.CheckFor(t, 5*time.Second, counter("closed after reset timeout", b.Closed.Load, 1))
				if b.Releases.Load() != 0 {
					t.Errorf("a connection whose reset timed out went back to idle")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := &scriptBackend{ack: tc.ack}
			g := startGateway(t, []server.Handler{sb}, append([]string{"-loops", "1", "-pool-size", "1"}, tc.args...)...)
			b := g.backend(0)
			testutil.CheckFor(t, 5*time.Second, idleIs(b, 1))
			for i := 0; i < tc.sessions; i++ {
				oneSession(t, g)
			}
			tc.check(t, b, sb)
		})
	}
}

func TestProxySessionStart(t *testing.T) {
	sb := &scriptBackend{}
	g := startGateway(t, []server.Handler{sb}, "-loops", "1", "-pool-size", "1",
		"-session-start", "-session-header", "X-User", "-session-header", "X-Absent")
	c := dial(t, g.url("/room/7?lang=en"), http.Header{"X-User": {"bob"}})
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("first"))
	got := sb.received()
	if len(got) != 2 || got[1] != "first" {
		t.Fatalf("backend received %q, want the session start then %q", got, "first")
	}
	var m struct {
		Type, SessionID, Path, Query, Client string
		Headers                              map[string]string
	}
	if err := json.Unmarshal([]byte(got[0]), &m); err != nil {
		t.Fatalf("session start %q: %v", got[0], err)
	}
	var fields map[string]any
	_ = json.Unmarshal([]byte(got[0]), &fields)
	if m.Type != "session_start" || fields["session_id"] == "" || m.Path != "/room/7" || m.Query != "lang=en" ||
		m.Client != c.LocalAddr().String() || len(m.Headers) != 1 || m.Headers["X-User"] != "bob" {
		t.Fatalf("session start = %s", got[0])
	}
}

func TestProxyBackendLostGives1011(t *testing.T) {
	sb := &scriptBackend{}
	g := startGateway(t, []server.Handler{sb}, "-loops", "1", "-pool-size", "2")
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("hello"))
	_ = c.WriteMessage(websocket.TextMessage, []byte("die"))
	expectClose(t, c, 1011)
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, counter("backend failures", b.Failures.Load, 1))
	testutil.CheckFor(t, 5*time.Second, counter("sessions closed backend_lost",
		func() int64 { return g.Server.Stats().Closed(server.ReasonBackendLost) }, 1))
}

// A backend's close code and reason reach the client as they came, for
// every code a peer may send; a close without a code becomes 1011.
func TestProxyBackendCloseCodesPassThrough(t *testing.T) {
	sb := &scriptBackend{}
	g := startGateway(t, []server.Handler{sb}, "-loops", "1", "-pool-size", "2")
	for _, tc := range []struct {
		send      string
		code      int
		reason    string
		reasonCnt int64
	}{
		{"close 4001 quota exceeded for this key", 4001, "quota exceeded for this key", 1},
		{"close 1000 done", 1000, "done", 2},
		{"close 1008 policy", 1008, "policy", 3},
		{"close 1013 busy", 1013, "busy", 4},
		{"close 3000 unauthorized", 3000, "unauthorized", 5},
	} {
		c := dial(t, g.url("/"), nil)
		_ = c.WriteMessage(websocket.TextMessage, []byte(tc.send))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Text != tc.reason {
			t.Fatalf("%q: client got %v, want close %d %q", tc.send, err, tc.code, tc.reason)
		}
		_ = c.Close()
		testutil.CheckFor(t, 5*time.Second, counter("sessions closed backend_close",
			func() int64 { return g.Server.Stats().Closed(server.ReasonBackendClose) }, tc.reasonCnt))
	}
	if n := g.backend(0).Failures.Load(); n != 0 {
		t.Errorf("%d backend failures: a backend's close is not a failure", n)
	}
	if got := clientCodeFor(t, g, "close-empty"); got != 1011 {
		t.Errorf("empty close from the backend: client got %d, want 1011", got)
	}
}

// clientCodeFor sends msg and returns the close code the client gets.
func clientCodeFor(t *testing.T, g *testGateway, msg string) int {
	t.Helper()
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte(msg))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("%q: %v, want a close", msg, err)
	}
	return ce.Code
}

func TestProxyAcquireTimeoutGives1013(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "1", "-pool-size", "1", "-pool-max", "1", "-acquire-timeout", "200ms")
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, idleIs(b, 1))
	holder := dial(t, g.url("/"), nil)
	defer holder.Close()
	roundTrip(t, holder, websocket.TextMessage, []byte("mine"))
	c := dial(t, g.url("/"), nil) // upgraded, then waits for a connection
	defer c.Close()
	expectClose(t, c, 1013)
	testutil.CheckFor(t, 5*time.Second, counter("sessions closed acquire_timeout",
		func() int64 { return g.Server.Stats().Closed(server.ReasonAcquireTimeout) }, 1))
	if total := b.Total.Load(); total > 1 {
		t.Errorf("total %d over max 1", total)
	}
}

// TestProxyWaitingSessionGetsReleasedConnection: a session that waits is
// served as soon as another session releases its connection (policy
// reuse: the released connection itself is handed over).
func TestProxyWaitingSessionGetsReleasedConnection(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "1", "-pool-size", "1", "-pool-max", "1", "-release-policy", "reuse")
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, idleIs(b, 1))
	holder := dial(t, g.url("/"), nil)
	roundTrip(t, holder, websocket.TextMessage, []byte("mine"))
	waiter := dial(t, g.url("/"), nil)
	defer waiter.Close()
	if err := waiter.WriteMessage(websocket.TextMessage, []byte("queued early")); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 5*time.Second, counter("sessions waiting", g.Pool.Shard(0).Waiting.Load, 1))
	_ = holder.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	expectClose(t, holder, 1000)
	holder.Close()
	// The frame sent while waiting was held, then relayed.
	if _, got, err := waiter.ReadMessage(); err != nil || string(got) != "queued early" {
		t.Fatalf("held frame: %q, %v", got, err)
	}
}

func TestProxyAllBackendsDownGives503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	g := startGatewayArgs(t, "-loops", "1", "-pool-size", "1", "-dial-timeout", "1s", "-backend", backendURL(dead))
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if b.Healthy() || b.DialFailures.Load() == 0 {
			return fmt.Errorf("backend healthy %v after %d dial failures, want it marked down", b.Healthy(), b.DialFailures.Load())
		}
		return nil
	})
	_, resp, err := websocket.DefaultDialer.Dial(g.url("/"), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("want HTTP 503, got %v, %v", resp, err)
	}
	if g.Server.Stats().Refused(503) != 1 {
		t.Errorf("503 not counted")
	}
}

func TestProxySlowClientIsBounded(t *testing.T) {
	sb := &scriptBackend{}
	g := startGateway(t, []server.Handler{sb}, "-loops", "1", "-pool-size", "1", "-flow-window", "262144", "-stall-timeout", "1s")
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	// Ask for 16 MiB and read none of it.
	if err := c.WriteMessage(websocket.TextMessage, []byte("flood")); err != nil {
		t.Fatal(err)
	}
	testutil.CheckFor(t, 10*time.Second, counter("sessions closed slow_consumer",
		func() int64 { return g.Server.Stats().Closed(server.ReasonSlowConsumer) }, 1))
	// The client reads what was sent before the cut: at most the budget
	// plus what the socket buffers held, then a close 1008 or the TCP end.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := 0
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != 1008 {
				t.Errorf("close code %d, want 1008", ce.Code)
			}
			break
		}
		got += len(p)
	}
	if got >= 16<<20 {
		t.Errorf("client received all %d bytes: nothing was bounded", got)
	}
}

func TestProxyRecoversWhenBackendReturns(t *testing.T) {
	first := startBackend(t, nil, "")
	addr := first.Addr()
	g := startGatewayArgs(t, "-loops", "1", "-pool-size", "2", "-dial-timeout", "1s", "-backend", backendURL(addr))
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, idleIs(b, 2))
	c := dial(t, g.url("/"), nil)
	roundTrip(t, c, websocket.TextMessage, []byte("before"))
	first.Stop() // the backend dies: the leased session gets 1011, idle ones go
	expectClose(t, c, 1011)
	c.Close()
	testutil.CheckFor(t, 10*time.Second, func() error {
		if b.Healthy() || b.Idle.Load() != 0 {
			return fmt.Errorf("backend healthy %v with %d idle, want it marked down with none", b.Healthy(), b.Idle.Load())
		}
		return nil
	})
	startBackend(t, nil, addr)
	testutil.CheckFor(t, 15*time.Second, func() error {
		if !b.Healthy() || b.Idle.Load() != 2 {
			return fmt.Errorf("backend healthy %v with %d idle, want it healthy with 2", b.Healthy(), b.Idle.Load())
		}
		return nil
	})
	c2 := dial(t, g.url("/"), nil)
	defer c2.Close()
	roundTrip(t, c2, websocket.TextMessage, []byte("after"))
}

func TestProxyShutdownSends1001(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "1", "-pool-size", "1", "-close-timeout", "1s")
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("hello"))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- g.Shutdown(ctx) // as the binary does on SIGTERM
	}()
	expectClose(t, c, 1001)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if g.backend(0).Total.Load() != 0 {
		t.Errorf("backend connections left after shutdown: %d", g.backend(0).Total.Load())
	}
}

// TestProxyPingsIdleBackendConnections: a backend that stops answering
// pings loses its idle connections (each closed when its pong is late,
// counted as a failure) and reconcile dials new ones; when it answers
// again, connections stay.
func TestProxyPingsIdleBackendConnections(t *testing.T) {
	rb, err := rawbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	rb.IgnorePings.Store(true)
	g := startGatewayArgs(t, "-loops", "1", "-pool-size", "2",
		"-backend-ping-interval", "50ms", "-backend-pong-timeout", "50ms", "-backend", backendURL(rb.Addr()))
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if n := b.Failures.Load(); n < 4 {
			return fmt.Errorf("%d connections closed by unanswered pings, want at least 4", n)
		}
		return nil
	})
	if rb.Pings.Load() == 0 {
		t.Fatal("no ping reached the backend")
	}
	rb.IgnorePings.Store(false)
	testutil.CheckFor(t, 5*time.Second, idleIs(b, 2))
	failures, pings := b.Failures.Load(), rb.Pings.Load()
	testutil.CheckFor(t, 5*time.Second, func() error {
		if n := rb.Pings.Load(); n < pings+4 {
			return fmt.Errorf("%d pings to healthy connections, want at least 4", n-pings)
		}
		return nil
	})
	if got := b.Failures.Load(); got > failures+2 { // at most the two pinged while the switch happened
		t.Errorf("answered pings still closed connections: failures %d -> %d", failures, got)
	}
}

// TestProxyRetiresConnectionsAfterLifetime: connections past their
// lifetime are replaced, and the replacement stands ready before the old
// one goes: idle never drops below target.
func TestProxyRetiresConnectionsAfterLifetime(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "1", "-pool-size", "2", "-max-lifetime", "150ms")
	b := g.backend(0)
	testutil.CheckFor(t, 5*time.Second, idleIs(b, 2))
	// Not a wait: idle is sampled throughout a window that holds several
	// lifetimes, and must never drop below target.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if idle := b.Idle.Load(); idle < 2 {
			t.Fatalf("idle dropped to %d while retiring", idle)
		}
		time.Sleep(time.Millisecond)
	}
	if b.Enrolled.Load() < 6 || b.Closed.Load() < 4 {
		t.Fatalf("no rotation: enrolled %d, closed %d", b.Enrolled.Load(), b.Closed.Load())
	}
}

func TestProxyAccessRecord(t *testing.T) {
	be := startBackend(t, nil, "")
	gw := newGateway(t, "-loops", "1", "-pool-size", "1", "-backend", backendURL(be.Addr()))
	records := make(chan *server.SessionRecord, 1)
	gw.SetSessionEnd(func(r *server.SessionRecord) { records <- r })
	start(t, gw)
	g := &testGateway{Gateway: gw, backends: []*server.Server{be}}
	c := dial(t, g.url("/chat?room=9"), nil)
	roundTrip(t, c, websocket.TextMessage, []byte("hello"))
	roundTrip(t, c, websocket.BinaryMessage, []byte("abc"))
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "done"))
	expectClose(t, c, 4000)
	c.Close()
	var r *server.SessionRecord
	select {
	case r = <-records:
	case <-time.After(5 * time.Second):
		t.Fatal("no session record")
	}
	if r.Path != "/chat?room=9" || r.Client != c.LocalAddr().String() || r.Backend != backendURL(be.Addr()) ||
		r.FramesIn != 3 || r.FramesOut != 3 || r.BytesIn != 5+3+6 || r.BytesOut != 5+3+2 ||
		r.CloseRecv != 4000 || r.CloseSent != 4000 || r.Reason != server.ReasonClientClose || r.Duration <= 0 {
		t.Fatalf("record %+v", *r)
	}
}

func TestProxyRoutesByPath(t *testing.T) {
	stt, tts := startBackend(t, nil, ""), startBackend(t, nil, "")
	// No default group: a path no route matches is refused 404.
	file := writeConfig(t, fmt.Sprintf(`groups:
  - name: stt
    backends:
      - url: %s
        pool_target: 1
  - name: tts
    backends:
      - url: %s
        pool_target: 1
routes:
  - path: /stt/
    group: stt
  - path: /tts/
    group: tts
`, backendURL(stt.Addr()), backendURL(tts.Addr())))
	g := startGatewayArgs(t, "-loops", "1", "-config", file)
	byURL := map[string]*pool.Backend{}
	for _, b := range g.Pool.Backends() {
		byURL[b.Settings().URL] = b
	}
	bSTT, bTTS := byURL[backendURL(stt.Addr())], byURL[backendURL(tts.Addr())]
	if bSTT == nil || bTTS == nil || bSTT.Group() != "stt" || bTTS.Group() != "tts" {
		t.Fatalf("pool backends %v: want stt's in group stt and tts's in group tts", byURL)
	}
	testutil.CheckFor(t, 5*time.Second, func() error {
		if bSTT.Idle.Load() != 1 || bTTS.Idle.Load() != 1 {
			return fmt.Errorf("idle stt %d tts %d, want 1 each", bSTT.Idle.Load(), bTTS.Idle.Load())
		}
		return nil
	})
	c := dial(t, g.url("/tts/en"), nil)
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("to tts"))
	if bTTS.Leases.Load() != 1 || bSTT.Leases.Load() != 0 {
		t.Fatalf("leases stt %d tts %d", bSTT.Leases.Load(), bTTS.Leases.Load())
	}
	_, resp, err := websocket.DefaultDialer.Dial(g.url("/nowhere"), nil)
	if err == nil || resp == nil || resp.StatusCode != 404 {
		t.Fatalf("unrouted path: %v %v, want 404", resp, err)
	}
}
