package goroutineproxy

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
)

// echoBackend is a gorilla echo server that counts its open connections
// and can cut them all, to play a failing backend.
type echoBackend struct {
	srv   *httptest.Server
	open  atomic.Int64
	mu    sync.Mutex
	conns map[*websocket.Conn]bool
}

func newEchoBackend(t *testing.T) *echoBackend {
	b := &echoBackend{conns: map[*websocket.Conn]bool{}}
	up := websocket.Upgrader{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		b.open.Add(1)
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			b.open.Add(-1)
			c.Close()
		}()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *echoBackend) url() string { return "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/" }

// cut closes n of the backend's connections from its side.
func (b *echoBackend) cut(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		if n == 0 {
			return
		}
		c.NetConn().Close()
		n--
	}
}

// socketCount counts the pool's sockets from its own side: opened by the
// dialer, minus closed. That is the figure the size limit is about (the
// backend notices a close a moment later).
type socketCount struct{ open, peak atomic.Int64 }

type countedConn struct {
	net.Conn
	c    *socketCount
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.c.open.Add(-1) })
	return c.Conn.Close()
}

func (s *socketCount) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n := s.open.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	return &countedConn{Conn: conn, c: s}, nil
}

func newTestPool(t *testing.T, url string, size int) (*Pool, context.CancelFunc) {
	p, _, stop := newCountedPool(t, url, size)
	return p, stop
}

func newCountedPool(t *testing.T, url string, size int) (*Pool, *socketCount, context.CancelFunc) {
	cfg, err := Config{Listen: "x", Backends: []string{url}, PoolSize: size, HealthInterval: time.Hour}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var ids atomic.Uint64
	sockets := &socketCount{}
	p := newPool(url, &cfg, &websocket.Dialer{NetDialContext: sockets.dial}, &ids)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.reconcileLoop(ctx); close(done) }()
	p.Signal()
	stop := func() { cancel(); <-done; p.closeAll() }
	return p, sockets, stop
}

func TestPoolFillsAndCountersMatchReality(t *testing.T) {
	b := newEchoBackend(t)
	p, stop := newTestPool(t, b.url(), 20)
	defer stop()
	testutil.WaitFor(t, 5*time.Second, "the pool to fill", func() bool { return p.Stats().Idle == 20 })
	// The backend counts a connection only after its 101 is on the wire, so
	// the client may hold it first.
	testutil.WaitFor(t, 5*time.Second, "the backend to count 20 connections", func() bool { return b.open.Load() >= 20 })
	if got := b.open.Load(); got != 20 {
		t.Fatalf("backend sees %d connections, pool says 20 idle", got)
	}
	if len(p.idle) != 20 {
		t.Fatalf("idle channel holds %d, counter says 20", len(p.idle))
	}
}

// TestPoolNeverExceedsTarget hammers acquire and release from many
// goroutines while connections break and reconcile replaces them: the
// backend never sees more connections than the target, and afterwards the
// counters equal the real state.
func TestPoolNeverExceedsTarget(t *testing.T) {
	const target = 16
	b := newEchoBackend(t)
	p, sockets, stop := newCountedPool(t, b.url(), target)
	testutil.WaitFor(t, 5*time.Second, "the pool to fill", func() bool { return p.Stats().Idle == target })

	var wg sync.WaitGroup
	deadline := time.Now().Add(500 * time.Millisecond)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				bc := p.tryAcquire()
				if bc == nil {
					bc = p.acquireWait(context.Background(), 50*time.Millisecond)
				}
				if bc == nil {
					p.Signal()
					continue
				}
				if w%8 == 0 { // some sessions break their connection
					bc.markBroken("test")
				}
				p.release(bc)
			}
		}()
	}
	wg.Add(1)
	go func() { // and the backend drops some on its side
		defer wg.Done()
		for time.Now().Before(deadline) {
			b.cut(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	wg.Wait()
	testutil.WaitFor(t, 5*time.Second, "the pool to heal", func() bool {
		s := p.Stats()
		return s.Idle-s.DeadIdle == target && s.Leased == 0 && s.Dialing == 0 && b.open.Load() == target
	})
	stop()
	if peak := sockets.peak.Load(); peak > target {
		t.Errorf("the pool held %d sockets at once; its size is %d", peak, target)
	}
	if open := sockets.open.Load(); open != 0 {
		t.Errorf("%d sockets left open after closeAll", open)
	}
	s := p.Stats()
	if s.Broken == 0 {
		t.Error("no connection broke: the test did not exercise failures")
	}
	testutil.WaitFor(t, 5*time.Second, "the backend to see every connection closed", func() bool { return b.open.Load() == 0 })
}
