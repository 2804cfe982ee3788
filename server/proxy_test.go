package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/reconcile"
)

// gateway is a proxy under test with its echo backends.
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

func startEchoBackend(t *testing.T) *Server {
	t.Helper()
	b, err := New(Config{Addr: "127.0.0.1:0", Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	return b
}

func startGateway(t *testing.T, nBackends int, st pool.Settings, cfg Config) *gateway {
	t.Helper()
	g := &gateway{}
	var list []pool.Settings
	for i := 0; i < nBackends; i++ {
		b := startEchoBackend(t)
		g.backends = append(g.backends, b)
		s := st
		s.URL = "ws://" + b.Addr() + "/"
		s, err := s.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, s)
	}
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = zaptest.NewLogger(t)
	g.pool = pool.New(pool.Config{Shards: cfg.Loops, MaxFrameBytes: 1 << 20, MaxMessageBytes: 1 << 20, Logger: cfg.Logger})
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
	g.rec = reconcile.Start(reconcile.Config{Pool: g.pool, Logger: cfg.Logger})
	return g
}

func TestProxyRelayBasic(t *testing.T) {
	g := startGateway(t, 1, pool.Settings{Target: 4}, Config{})
	defer g.stop()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+g.srv.Addr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range []int{5, 1000, 70000, 100000} {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		msg := bytes.Repeat([]byte{'a'}, n)
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		_, p, err := c.ReadMessage()
		if err != nil || !bytes.Equal(p, msg) {
			t.Fatalf("size %d: got %d bytes, %v", n, len(p), err)
		}
	}
}
