package config_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/config"
	wsgateway "github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/reconcile"
	"github.com/wsgate/wsgate/relay"
	"github.com/wsgate/wsgate/server"
)

// fleet is a gateway under live reconfiguration, with its echo backends.
type fleet struct {
	t       *testing.T
	srv     *server.Server
	pool    *pool.Pool
	rec     *reconcile.Reconciler
	applier *config.Applier
	echoes  []*server.Server

	stopMonitor chan struct{}
	monitorDone chan struct{}
	boundErr    atomic.Pointer[string]
}

func startEcho(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// startFleet starts n echo backends and a gateway with an empty pool, and
// a monitor that checks the per-backend bound as fast as it can.
func startFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := &fleet{t: t, stopMonitor: make(chan struct{}), monitorDone: make(chan struct{})}
	for i := 0; i < n; i++ {
		f.echoes = append(f.echoes, startEcho(t))
	}
	log := zaptest.NewLogger(t)
	f.pool = pool.New(pool.Config{Shards: 2, MaxFrameBytes: 1 << 20, MaxMessageBytes: 1 << 20})
	proxy := relay.New(f.pool, 0)
	f.applier = config.NewApplier(f.pool, proxy, log)
	cfg := server.Config{Addr: "127.0.0.1:0", Loops: 2, Logger: log, TickInterval: 10 * time.Millisecond}
	wsgateway.Wire(&cfg, f.pool, proxy)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.rec = reconcile.Start(reconcile.Config{Pool: f.pool, Logger: log, Interval: 200 * time.Millisecond})
	go f.monitorBound()
	return f
}

// monitorBound samples every backend as fast as it can: its total stays
// within its max, except right after max was lowered below what it held;
// then it may only shrink until it is within the new max (the pool never
// dials past a max, and closes the excess as it can: idle at once, leased
// as their sessions end).
func (f *fleet) monitorBound() {
	defer close(f.monitorDone)
	last := make(map[*pool.Backend]int64)
	for {
		select {
		case <-f.stopMonitor:
			return
		default:
		}
		for _, b := range f.pool.Backends() {
			max := int64(b.Settings().Max)
			total := b.Total.Load()
			if prev, seen := last[b]; max > 0 && total > max && (!seen || total > prev) {
				msg := fmt.Sprintf("backend %s: total %d over max %d and growing (was %d)", b.Settings().URL, total, max, prev)
				f.boundErr.CompareAndSwap(nil, &msg)
			}
			last[b] = total
		}
		time.Sleep(50 * time.Microsecond) // fast enough to catch a dial past max, without taking a core
	}
}

func (f *fleet) stop() {
	select {
	case <-f.stopMonitor:
	default:
		close(f.stopMonitor)
	}
	<-f.monitorDone
	f.rec.Stop()
	f.srv.Stop()
	for _, e := range f.echoes {
		e.Stop()
	}
	if p := f.boundErr.Load(); p != nil {
		f.t.Error(*p)
	}
}

func (f *fleet) echoURL(i int) string { return "ws://" + f.echoes[i].Addr() + "/" }

func (f *fleet) backend(url string) *pool.Backend {
	for _, b := range f.pool.Backends() {
		if b.Settings().URL == url {
			return b
		}
	}
	return nil
}

// session is a client that keeps talking; check proves it is still alive.
type session struct {
	c *websocket.Conn
	n int
}

func (f *fleet) open(path string) *session {
	f.t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+f.srv.Addr()+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	s := &session{c: c}
	s.check(f.t)
	return s
}

func (s *session) check(t *testing.T) {
	t.Helper()
	s.n++
	msg := fmt.Sprintf("message %d", s.n)
	_ = s.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := s.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("session dropped: %v", err)
	}
	if _, got, err := s.c.ReadMessage(); err != nil || string(got) != msg {
		t.Fatalf("session dropped or confused: %q %v", got, err)
	}
}

// runSource runs a source's goroutine until stop is called; stop returns
// once it has ended.
func runSource(run func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }()
	return func() { cancel(); <-done }
}

// watchFile loads the file at path into a and watches it, polling every
// poll (0: the default), until stop is called.
func watchFile(t *testing.T, path string, a *config.Applier, poll time.Duration) (stop func()) {
	t.Helper()
	src := config.NewFileSource(path, a, zaptest.NewLogger(t))
	src.PollInterval = poll
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	return runSource(src.Run)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // atomic, as editors and config managers do
		t.Fatal(err)
	}
}

// TestFileSourceAppliesChangesLive: a YAML file edited while sessions run:
// a backend added fills its pool, a target raised grows, a bad version is
// refused with the field named and changes nothing, a backend removed
// loses its connections; the session on the unaffected backend never
// notices.
func TestFileSourceAppliesChangesLive(t *testing.T) {
	f := startFleet(t, 2)
	defer f.stop()
	a, b := f.echoURL(0), f.echoURL(1)
	path := t.TempDir() + "/wsgate.yaml"
	doc := func(backends string) string {
		return "default_group: main\ngroups:\n  - name: main\n    backends:\n" + backends
	}
	writeFile(t, path, doc(fmt.Sprintf("      - {url: %q, pool_target: 2, max_conns: 20}\n", a)))
	defer watchFile(t, path, f.applier, 20*time.Millisecond)()

	testutil.WaitFor(t, 5*time.Second, "backend A filled", func() bool { return f.backend(a).Idle.Load() == 2 })
	s := f.open("/")

	writeFile(t, path, doc(fmt.Sprintf("      - {url: %q, pool_target: 4, max_conns: 20}\n      - {url: %q, pool_target: 3, max_conns: 20}\n", a, b)))
	took := testutil.WaitFor(t, 5*time.Second, "B added and A grown", func() bool {
		bb := f.backend(b)
		return bb != nil && bb.Idle.Load() == 3 && f.backend(a).Idle.Load() == 4
	})
	t.Logf("file change applied and pools at target in %v", took)
	s.check(t)

	version := f.applier.Status().Version
	writeFile(t, path, doc(fmt.Sprintf("      - {url: %q, pool_target: -1}\n", a)))
	testutil.WaitFor(t, 5*time.Second, "bad version refused", func() bool { return f.applier.Status().LastError != "" })
	if st := f.applier.Status(); st.Version != version || !strings.Contains(st.LastError, "pool_target") || !strings.Contains(st.LastError, "-1") {
		t.Fatalf("status after a bad file: %+v", st)
	}
	s.check(t)

	writeFile(t, path, doc(fmt.Sprintf("      - {url: %q, pool_target: 4, max_conns: 20}\n", a)))
	testutil.WaitFor(t, 5*time.Second, "B removed, closed and gone from the pool", func() bool { return f.backend(b) == nil })
	s.check(t)
	if n := f.srv.Stats().Closed(server.ReasonBackendLost); n != 0 {
		t.Fatalf("%d sessions lost their backend", n)
	}
}

// TestFileRewrittenOftenStillApplies is the regression test for the
// hardening issue's defect 12: the watcher applied a change only once the
// file had stayed unchanged for a whole poll, so a file rewritten every
// 200 ms applied nothing for a minute. With the default poll and settle
// times, versions land while the rewrites go on.
func TestFileRewrittenOftenStillApplies(t *testing.T) {
	p := pool.New(pool.Config{Shards: 1})
	a := config.NewApplier(p, relay.New(p, 0), zaptest.NewLogger(t))
	path := t.TempDir() + "/wsgate.yaml"
	doc := func(target int) string {
		return fmt.Sprintf("default_group: main\ngroups:\n  - name: main\n    backends:\n      - {url: \"ws://127.0.0.1:1/\", pool_target: %d}\n", target)
	}
	writeFile(t, path, doc(1))
	defer watchFile(t, path, a, 0)() // default poll and settle
	first := a.Status().Version
	for target := 2; target < 14; target++ { // 2.4 s of rewrites, one every 200 ms
		writeFile(t, path, doc(target))
		time.Sleep(200 * time.Millisecond) // the writer's pace, not a wait for the watcher
	}
	if got := a.Status().Version; got < first+3 {
		t.Fatalf("config version %d -> %d while the file was rewritten 12 times", first, got)
	}
}
