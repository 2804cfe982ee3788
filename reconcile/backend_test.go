package reconcile_test

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	wsgateway "github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/rawbackend"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/relay"
	"github.com/wsgate/wsgate/server"
)

// mode is how a testBackend treats a connection it accepts.
type mode int32

const (
	modeServe mode = iota // complete the handshake, then read and drop whatever comes
	modeHang              // accept and never answer: a backend that is stuck
	modeDrop              // close at once: the handshake fails
)

// testBackend is a backend that can be told to hang or to fail its
// handshakes, and restarted on the same port. A goroutine per connection;
// Close waits for them all.
type testBackend struct {
	ln       net.Listener
	mode     atomic.Int32
	accepted atomic.Int64 // connections accepted, any mode

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	once  sync.Once
}

// listenBackend listens on addr ("127.0.0.1:0" for any port).
func listenBackend(t *testing.T, addr string, m mode) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{ln: ln, conns: make(map[net.Conn]struct{})}
	b.mode.Store(int32(m))
	b.wg.Add(1)
	go b.acceptLoop()
	return b
}

func (b *testBackend) Addr() string   { return b.ln.Addr().String() }
func (b *testBackend) URL() string    { return "ws://" + b.Addr() + "/" }
func (b *testBackend) setMode(m mode) { b.mode.Store(int32(m)) }

// Open is the number of connections the backend holds open.
func (b *testBackend) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// Close stops listening, closes every connection and waits for their
// goroutines. Idempotent.
func (b *testBackend) Close() {
	b.once.Do(func() {
		_ = b.ln.Close()
		b.mu.Lock()
		for c := range b.conns {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
}

func (b *testBackend) acceptLoop() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		if mode(b.mode.Load()) == modeDrop {
			_ = c.Close()
			continue
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go b.serve(c, mode(b.mode.Load()))
	}
}

func (b *testBackend) serve(c net.Conn, m mode) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		_ = c.Close()
	}()
	r := bufio.NewReader(c)
	if m == modeServe {
		if err := rawbackend.Handshake(c, r, nil); err != nil {
			return
		}
	}
	_, _ = io.Copy(io.Discard, r) // until the peer (or Close) ends it
}

// gateway is a gnet server that hosts a pool's shards, for reconcilers
// to fill. Sessions go through server.Proxy.
type gateway struct {
	pool *pool.Pool
	srv  *server.Server
}

// startGateway starts a gateway with loops shards and the given backends
// (normalized here). No reconciler runs yet.
func startGateway(t *testing.T, loops int, backends ...pool.Settings) *gateway {
	t.Helper()
	log := zaptest.NewLogger(t)
	p := pool.New(pool.Config{Shards: loops, MaxFrameBytes: 1 << 20, MaxMessageBytes: 1 << 20})
	for i := range backends {
		st, err := backends[i].Normalize()
		if err != nil {
			t.Fatal(err)
		}
		backends[i] = st
	}
	if err := p.SetBackends(backends); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Addr: "127.0.0.1:0", Loops: loops, Logger: log, TickInterval: 10 * time.Millisecond}
	wsgateway.Wire(&cfg, p, relay.New(p, 0))
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	return &gateway{pool: p, srv: srv}
}

func (g *gateway) backend(url string) *pool.Backend {
	for _, b := range g.pool.Backends() {
		if b.Settings().URL == url {
			return b
		}
	}
	return nil
}

// checkNoLeaks is deferred first by a test: when everything else has
// stopped, no goroutine of ours is left (gnet's shared worker pool is
// not ours).
func checkNoLeaks(t *testing.T) func() {
	ignore := goleak.IgnoreCurrent()
	return func() {
		goleak.VerifyNone(t, testutil.IgnoreGnetWorkers(ignore)...)
	}
}

// within runs fn and fails the test if it has not returned after d (a
// generous bound: it proves fn does not wait out a long timeout).
func within(t *testing.T, what string, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}
