package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/rawbackend"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/reconcile"
)

// gateway is a proxy under test with its backends.
type gateway struct {
	srv      *Server
	pool     *pool.Pool
	rec      *reconcile.Reconciler
	backends []*Server
}

func (g *gateway) stop() {
	g.rec.Stop()
	g.srv.Stop()
	for _, b := range g.backends {
		b.Stop()
	}
}

func (g *gateway) url(path string) string { return "ws://" + g.srv.Addr() + path }

// backend returns the pool's view of backend i.
func (g *gateway) backend(i int) *pool.Backend { return g.pool.Backends()[i] }

func startBackend(t *testing.T, h Handler, addr string) *Server {
	t.Helper()
	return startTestServer(t, Config{Addr: addr, Loops: 1, Handler: h, WriteBufferLimit: 64 << 20})
}

// startGateway starts a proxy with one backend per handler (nil: echo),
// each with settings st, and its reconciler.
func startGateway(t *testing.T, handlers []Handler, st pool.Settings, cfg Config) *gateway {
	t.Helper()
	g := &gateway{}
	var list []pool.Settings
	for _, h := range handlers {
		if h == nil {
			h = Echo{}
		}
		b := startBackend(t, h, "")
		g.backends = append(g.backends, b)
		list = append(list, backendSettings(t, st, "ws://"+b.Addr()+"/"))
	}
	return g.start(t, list, cfg)
}

func backendSettings(t *testing.T, st pool.Settings, url string) pool.Settings {
	t.Helper()
	st.URL = url
	st, err := st.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (g *gateway) start(t *testing.T, list []pool.Settings, cfg Config) *gateway {
	t.Helper()
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = 10 * time.Millisecond
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = zaptest.NewLogger(t)
	g.pool = pool.New(pool.Config{Shards: cfg.Loops, MaxFrameBytes: 1 << 20, MaxMessageBytes: 1 << 20,
		WriteBufferLimit: cfg.WriteBufferLimit, Logger: cfg.Logger})
	if err := g.pool.SetBackends(list); err != nil {
		t.Fatal(err)
	}
	cfg.Pool = g.pool
	if cfg.Handler == nil {
		cfg.Handler = &Proxy{}
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	g.srv = srv
	g.rec = reconcile.Start(reconcile.Config{Pool: g.pool, Logger: cfg.Logger, Interval: 200 * time.Millisecond})
	return g
}

func dial(t *testing.T, url string, h http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func roundTrip(t *testing.T, c *websocket.Conn, mt int, msg []byte) {
	t.Helper()
	if err := c.WriteMessage(mt, msg); err != nil {
		t.Fatal(err)
	}
	gotType, got, err := c.ReadMessage()
	if err != nil || gotType != mt || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes: got type %d, %d bytes, err %v", len(msg), gotType, len(got), err)
	}
}

// expectClose reads until the server's close frame and checks its code.
func expectClose(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("want close %d, got %v", code, err)
		}
		return
	}
}

func TestProxyRelaysBothWays(t *testing.T) {
	g := startGateway(t, []Handler{nil, nil, nil}, pool.Settings{Target: 4}, Config{})
	defer g.stop()
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
// than sessions.
func TestProxyReusesConnections(t *testing.T) {
	g := startGateway(t, []Handler{nil}, pool.Settings{Target: 1}, Config{Loops: 1})
	defer g.stop()
	b := g.backend(0)
	waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 1 })
	const sessions = 10
	for i := 0; i < sessions; i++ {
		c := dial(t, g.url("/"), nil)
		roundTrip(t, c, websocket.TextMessage, []byte("hi"))
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		expectClose(t, c, 1000)
		c.Close()
		waitFor(t, 5*time.Second, "release", func() bool { return b.Releases.Load() == int64(i+1) })
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

func (b *scriptBackend) Upgrade(*Session, *codec.UpgradeRequest) error { return nil }
func (b *scriptBackend) Opened(*Session)                               {}
func (b *scriptBackend) Closed(*Session, CloseReason)                  {}

func (b *scriptBackend) Frame(s *Session, h ws.Header, p []byte) {
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
			s.WriteMessage(ws.OpText, true, []byte(b.ack))
		}
	case msg == "die":
		_ = s.conn.Close() // TCP gone without a close frame
	case msg == "flood":
		chunk := make([]byte, 64<<10)
		for i := 0; i < 256; i++ { // 16 MiB, far past the proxy's 4 MiB budget
			s.WriteMessage(ws.OpBinary, true, chunk)
		}
	default:
		s.WriteMessage(h.OpCode, h.Fin, p)
	}
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
	oneSession := func(t *testing.T, g *gateway) {
		c := dial(t, g.url("/"), nil)
		roundTrip(t, c, websocket.TextMessage, []byte("hello"))
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		expectClose(t, c, 1000)
		c.Close()
	}
	t.Run("close", func(t *testing.T) {
		g := startGateway(t, []Handler{nil}, pool.Settings{Target: 1, Policy: pool.PolicyClose}, Config{Loops: 1})
		defer g.stop()
		b := g.backend(0)
		waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 1 })
		for i := 0; i < 3; i++ {
			oneSession(t, g)
		}
		waitFor(t, 5*time.Second, "connections closed", func() bool { return b.Closed.Load() == 3 })
		if got := b.Releases.Load(); got != 0 {
			t.Errorf("policy close: %d releases to idle", got)
		}
		waitFor(t, 5*time.Second, "replacements", func() bool { return b.Idle.Load() == 1 })
	})
	t.Run("reset with ack", func(t *testing.T) {
		sb := &scriptBackend{ack: "ACK"}
		g := startGateway(t, []Handler{sb}, pool.Settings{Target: 1, Policy: pool.PolicyReset,
			ResetMessage: "RESET", ResetAck: "ACK"}, Config{Loops: 1})
		defer g.stop()
		b := g.backend(0)
		waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 1 })
		oneSession(t, g)
		waitFor(t, 5*time.Second, "reset done", func() bool { return b.Releases.Load() == 1 })
		if sb.count("RESET") != 1 || b.Closed.Load() != 0 {
			t.Errorf("reset: backend got %v, closed %d", sb.received(), b.Closed.Load())
		}
	})
	t.Run("reset with quiet period", func(t *testing.T) {
		sb := &scriptBackend{}
		g := startGateway(t, []Handler{sb}, pool.Settings{Target: 1, Policy: pool.PolicyReset,
			ResetMessage: "RESET", ResetQuiet: 50 * time.Millisecond}, Config{Loops: 1})
		defer g.stop()
		b := g.backend(0)
		waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 1 })
		oneSession(t, g)
		waitFor(t, 5*time.Second, "reset done", func() bool { return b.Releases.Load() == 1 })
	})
	t.Run("reset timeout closes", func(t *testing.T) {
		sb := &scriptBackend{} // never acks
		g := startGateway(t, []Handler{sb}, pool.Settings{Target: 1, Policy: pool.PolicyReset,
			ResetMessage: "RESET", ResetAck: "ACK", ResetTimeout: 100 * time.Millisecond}, Config{Loops: 1})
		defer g.stop()
		b := g.backend(0)
		waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 1 })
		oneSession(t, g)
		waitFor(t, 5*time.Second, "closed after reset timeout", func() bool { return b.Closed.Load() == 1 })
		if b.Releases.Load() != 0 {
			t.Errorf("a connection whose reset timed out went back to idle")
		}
	})
}

func TestProxySessionStart(t *testing.T) {
	sb := &scriptBackend{}
	g := startGateway(t, []Handler{sb}, pool.Settings{Target: 1, SessionStart: true,
		SessionHeaders: []string{"X-User", "X-Absent"}}, Config{Loops: 1})
	defer g.stop()
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
	g := startGateway(t, []Handler{sb}, pool.Settings{Target: 2}, Config{Loops: 1})
	defer g.stop()
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("hello"))
	_ = c.WriteMessage(websocket.TextMessage, []byte("die"))
	expectClose(t, c, 1011)
	b := g.backend(0)
	waitFor(t, 5*time.Second, "failure counted", func() bool { return b.Failures.Load() == 1 })
	if got := g.srv.Stats().Closed(ReasonBackendLost); got != 1 {
		waitFor(t, 5*time.Second, "session end counted", func() bool { return g.srv.Stats().Closed(ReasonBackendLost) == 1 })
	}
}

func TestProxyAcquireTimeoutGives1013(t *testing.T) {
	g := startGateway(t, []Handler{nil}, pool.Settings{Target: 1, Max: 1},
		Config{Loops: 1, Handler: &Proxy{AcquireTimeout: 200 * time.Millisecond}})
	defer g.stop()
	b := g.backend(0)
	waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 1 })
	holder := dial(t, g.url("/"), nil)
	defer holder.Close()
	roundTrip(t, holder, websocket.TextMessage, []byte("mine"))
	c := dial(t, g.url("/"), nil) // upgraded, then waits for a connection
	defer c.Close()
	expectClose(t, c, 1013)
	if got := g.srv.Stats().Closed(ReasonAcquireTimeout); got != 1 {
		waitFor(t, 5*time.Second, "acquire timeout counted", func() bool { return g.srv.Stats().Closed(ReasonAcquireTimeout) == 1 })
	}
	if total := b.Total.Load(); total > 1 {
		t.Errorf("total %d over max 1", total)
	}
}

// TestProxyWaitingSessionGetsReleasedConnection: a session that waits is
// served as soon as another session releases its connection.
func TestProxyWaitingSessionGetsReleasedConnection(t *testing.T) {
	g := startGateway(t, []Handler{nil}, pool.Settings{Target: 1, Max: 1}, Config{Loops: 1})
	defer g.stop()
	b := g.backend(0)
	waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 1 })
	holder := dial(t, g.url("/"), nil)
	roundTrip(t, holder, websocket.TextMessage, []byte("mine"))
	waiter := dial(t, g.url("/"), nil)
	defer waiter.Close()
	if err := waiter.WriteMessage(websocket.TextMessage, []byte("queued early")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "waiter queued", func() bool { return g.pool.Shard(0).Waiting.Load() == 1 })
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
	g := (&gateway{}).start(t, []pool.Settings{backendSettings(t, pool.Settings{Target: 1, DialTimeout: time.Second}, "ws://"+dead+"/")}, Config{Loops: 1})
	defer g.stop()
	b := g.backend(0)
	waitFor(t, 5*time.Second, "backend marked down", func() bool { return !b.Healthy() && b.DialFailures.Load() > 0 })
	_, resp, err := websocket.DefaultDialer.Dial(g.url("/"), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("want HTTP 503, got %v, %v", resp, err)
	}
	if g.srv.Stats().Refused(503) != 1 {
		t.Errorf("503 not counted")
	}
}

func TestProxySlowClientIsBounded(t *testing.T) {
	sb := &scriptBackend{}
	g := startGateway(t, []Handler{sb}, pool.Settings{Target: 1}, Config{Loops: 1, WriteBufferLimit: 1 << 20})
	defer g.stop()
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	// Ask for 16 MiB and read none of it.
	if err := c.WriteMessage(websocket.TextMessage, []byte("flood")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "slow consumer detected", func() bool { return g.srv.Stats().Closed(ReasonSlowConsumer) == 1 })
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
	first := startBackend(t, Echo{}, "")
	addr := first.Addr()
	g := (&gateway{}).start(t, []pool.Settings{backendSettings(t, pool.Settings{Target: 2, DialTimeout: time.Second}, "ws://"+addr+"/")}, Config{Loops: 1})
	defer g.stop()
	b := g.backend(0)
	waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 2 })
	c := dial(t, g.url("/"), nil)
	roundTrip(t, c, websocket.TextMessage, []byte("before"))
	first.Stop() // the backend dies: the leased session gets 1011, idle ones go
	expectClose(t, c, 1011)
	c.Close()
	waitFor(t, 10*time.Second, "backend marked down", func() bool { return !b.Healthy() && b.Idle.Load() == 0 })
	second := startBackend(t, Echo{}, addr)
	defer second.Stop()
	waitFor(t, 15*time.Second, "pool refilled", func() bool { return b.Healthy() && b.Idle.Load() == 2 })
	c2 := dial(t, g.url("/"), nil)
	defer c2.Close()
	roundTrip(t, c2, websocket.TextMessage, []byte("after"))
}

func TestProxyShutdownSends1001(t *testing.T) {
	g := startGateway(t, []Handler{nil}, pool.Settings{Target: 1}, Config{Loops: 1, CloseTimeout: time.Second})
	defer g.stop()
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("hello"))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.rec.Stop() // as the binary does: no dial may race the stop
		done <- g.srv.Shutdown(ctx)
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
	st := pool.Settings{Target: 2, PingInterval: 50 * time.Millisecond, PongTimeout: 50 * time.Millisecond}
	g := (&gateway{}).start(t, []pool.Settings{backendSettings(t, st, "ws://"+rb.Addr()+"/")}, Config{Loops: 1})
	defer g.stop()
	b := g.backend(0)
	waitFor(t, 5*time.Second, "unanswered pings close connections", func() bool { return b.Failures.Load() >= 4 })
	if rb.Pings.Load() == 0 {
		t.Fatal("no ping reached the backend")
	}
	rb.IgnorePings.Store(false)
	waitFor(t, 5*time.Second, "pool refilled", func() bool { return b.Idle.Load() == 2 })
	failures, pings := b.Failures.Load(), rb.Pings.Load()
	waitFor(t, 5*time.Second, "healthy connections pinged", func() bool { return rb.Pings.Load() >= pings+4 })
	if got := b.Failures.Load(); got > failures+2 { // at most the two pinged while the switch happened
		t.Errorf("answered pings still closed connections: failures %d -> %d", failures, got)
	}
}

// TestProxyRetiresConnectionsAfterLifetime: connections past their
// lifetime are replaced, and the replacement stands ready before the old
// one goes: idle never drops below target.
func TestProxyRetiresConnectionsAfterLifetime(t *testing.T) {
	g := startGateway(t, []Handler{nil}, pool.Settings{Target: 2, MaxLifetime: 150 * time.Millisecond}, Config{Loops: 1})
	defer g.stop()
	b := g.backend(0)
	waitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 2 })
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
	records := make(chan *SessionRecord, 1)
	g := startGateway(t, []Handler{nil}, pool.Settings{Target: 1}, Config{Loops: 1,
		OnSessionEnd: func(r *SessionRecord) { records <- r }})
	defer g.stop()
	c := dial(t, g.url("/chat?room=9"), nil)
	roundTrip(t, c, websocket.TextMessage, []byte("hello"))
	roundTrip(t, c, websocket.BinaryMessage, []byte("abc"))
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "done"))
	expectClose(t, c, 4000)
	c.Close()
	var r *SessionRecord
	select {
	case r = <-records:
	case <-time.After(5 * time.Second):
		t.Fatal("no session record")
	}
	if r.Path != "/chat?room=9" || r.Client != c.LocalAddr().String() || r.Backend != g.backend(0).Settings().URL ||
		r.FramesIn != 3 || r.FramesOut != 3 || r.BytesIn != 5+3+6 || r.BytesOut != 5+3+2 ||
		r.CloseRecv != 4000 || r.CloseSent != 4000 || r.Reason != ReasonClientClose || r.Duration <= 0 {
		t.Fatalf("record %+v", *r)
	}
}

func TestProxyRoutesByPath(t *testing.T) {
	a, b := startBackend(t, Echo{}, ""), startBackend(t, Echo{}, "")
	stA := backendSettings(t, pool.Settings{Target: 1, Group: "stt"}, "ws://"+a.Addr()+"/")
	stB := backendSettings(t, pool.Settings{Target: 1, Group: "tts"}, "ws://"+b.Addr()+"/")
	g := (&gateway{backends: []*Server{a, b}}).start(t, []pool.Settings{stA, stB}, Config{Loops: 1})
	defer g.stop()
	g.pool.SetRouting(pool.NewRouting(1, []pool.Route{{Path: "/stt/", Group: "stt"}, {Path: "/tts/", Group: "tts"}}, ""))
	waitFor(t, 5*time.Second, "pools filled", func() bool { return g.backend(0).Idle.Load() == 1 && g.backend(1).Idle.Load() == 1 })
	c := dial(t, g.url("/tts/en"), nil)
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("to tts"))
	if g.backend(1).Leases.Load() != 1 || g.backend(0).Leases.Load() != 0 {
		t.Fatalf("leases stt %d tts %d", g.backend(0).Leases.Load(), g.backend(1).Leases.Load())
	}
	_, resp, err := websocket.DefaultDialer.Dial(g.url("/nowhere"), nil)
	if err == nil || resp == nil || resp.StatusCode != 404 {
		t.Fatalf("unrouted path: %v %v, want 404", resp, err)
	}
}
