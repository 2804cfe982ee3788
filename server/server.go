package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/pool"
)

// Server is one gnet engine serving WebSocket sessions on every event loop.
// Start, Addr, Stats, Shutdown and Stop are safe for concurrent use; the
// gnet callbacks run on the loops.
type Server struct {
	gnet.BuiltinEventEngine

	cfg   Config
	log   *zap.Logger
	stats Stats
	epoch time.Time // shard clocks count from here (monotonic)

	eng      gnet.Engine   // set in OnBoot, read after booted is closed
	booted   chan struct{} // closed by OnBoot
	runErr   chan error    // gnet.Rotate's result
	shards   sync.Map      // gnet.EventLoop -> *shard, each created on its loop
	shardSeq atomic.Int32  // shards created so far (names their index)
	draining atomic.Bool   // refuse new sessions with 503
	nextID   atomic.Uint64 // session ids

	anchorDir   string     // temp dir of the private unix listener used to find the loops
	anchorAddr  string     // its socket path
	anchorSeen  chan bool  // OnOpen of an anchor: true if it anchored a new loop
	anchorConns []net.Conn // our ends of the anchors; owned by Start, closed by Stop

	tickCtx   context.Context // cancelled by Stop; ends the shard tickers
	stopTicks context.CancelFunc
	tickers   sync.WaitGroup
	stopOnce  sync.Once
	logLimits [numCloseReasons]logLimiter
}

// New checks cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		epoch:  time.Now(),
		booted: make(chan struct{}),
		runErr: make(chan error, 1),
	}
	s.anchorSeen = make(chan bool, 8*cfg.Loops+8)
	s.tickCtx, s.stopTicks = context.WithCancel(context.Background())
	return s, nil
}

// Stats returns the live counters. Safe for concurrent use.
func (s *Server) Stats() *Stats { return &s.stats }

// Config returns the effective configuration (defaults applied).
func (s *Server) Config() Config { return s.cfg }

// Start listens and runs the event loops in the background; it returns once
// every loop has a shard, or with the reason the engine could not start.
func (s *Server) Start() error {
	dir, err := os.MkdirTemp("", "wsgate-anchor-")
	if err != nil {
		return fmt.Errorf("server: anchor dir: %w", err)
	}
	s.anchorDir = dir
	s.anchorAddr = filepath.Join(dir, "loops.sock")
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.cfg.Loops),
		gnet.WithLoadBalancing(gnet.LeastConnections),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReuseAddr(true),
		gnet.WithLogger(s.log.Named("gnet").Sugar()),
	}
	addrs := []string{"tcp://" + s.cfg.Addr, "unix://" + s.anchorAddr}
	go func() { s.runErr <- gnet.Rotate(s, addrs, opts...) }()
	select {
	case <-s.booted:
	case err := <-s.runErr:
		_ = os.RemoveAll(dir)
		return fmt.Errorf("server: listen %s: %w", s.cfg.Addr, err)
	}
	if err := s.anchorLoops(); err != nil {
		s.Stop()
		return err
	}
	s.log.Info("listening", zap.String("addr", s.Addr()), zap.Int("loops", s.cfg.Loops),
		zap.Int("max_conns", s.cfg.MaxConns))
	return nil
}

// anchorLoops dials the private unix listener until every event loop holds
// one anchor connection. gnet hands out EventLoop handles only through
// connections, and shards need theirs before any client arrives (timers
// now, backend pools later). LeastConnections puts each new anchor on an
// empty loop; a client arriving meanwhile can skew that, so an anchor that
// lands on an anchored loop is closed and another is dialed.
func (s *Server) anchorLoops() error {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for attempts := 0; len(s.anchorConns) < s.cfg.Loops; attempts++ {
		if attempts > 8*s.cfg.Loops {
			return fmt.Errorf("server: could not anchor %d event loops", s.cfg.Loops)
		}
		c, err := net.Dial("unix", s.anchorAddr)
		if err != nil {
			return fmt.Errorf("server: anchor: %w", err)
		}
		select {
		case accepted := <-s.anchorSeen:
			if !accepted {
				_ = c.Close()
				continue
			}
			// Our end stays open for the server's life: closing it would
			// end the loop's end too.
			s.anchorConns = append(s.anchorConns, c)
		case <-deadline.C:
			_ = c.Close()
			return fmt.Errorf("server: anchoring %d event loops timed out", s.cfg.Loops)
		}
	}
	return nil
}

// Addr is the bound TCP listen address (useful with port 0).
func (s *Server) Addr() string {
	fd, err := s.eng.DupListener("tcp", s.cfg.Addr)
	if err != nil {
		return s.cfg.Addr
	}
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return s.cfg.Addr
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *syscall.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	}
	return s.cfg.Addr
}

// Shutdown refuses new sessions (503), lets open ones end by themselves
// for the configured grace period, sends close 1001 to those left, waits
// until they are gone or ctx ends, closes the backend connections with
// close 1001, and stops the engine.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	var err error
	if s.cfg.ShutdownGrace > 0 {
		err = s.waitSessions(ctx, s.cfg.ShutdownGrace)
	}
	if err == nil || errors.Is(err, errGraceOver) {
		s.eachShard(func(sh *shard) { sh.closeAll() })
		err = s.waitSessions(ctx, 0)
	}
	if s.cfg.Pool != nil {
		s.eachShard(func(sh *shard) { sh.pool.CloseAll() })
	}
	s.Stop()
	return err
}

var errGraceOver = errors.New("server: grace period over")

// waitSessions polls until no client connection is open, ctx ends, or
// (with grace > 0) grace has passed.
func (s *Server) waitSessions(ctx context.Context, grace time.Duration) error {
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	var graceOver <-chan time.Time
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		graceOver = t.C
	}
	for s.stats.Open.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-graceOver:
			return errGraceOver
		case <-poll.C:
		}
	}
	return nil
}

// Stop closes every connection at once and waits for the engine, the loops
// and the shard tickers to end.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.stopTicks()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.eng.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Debug("engine stop", zap.Error(err))
		}
		<-s.runErr
		s.tickers.Wait()
		for _, c := range s.anchorConns {
			_ = c.Close()
		}
		_ = os.RemoveAll(s.anchorDir)
	})
}

// eachShard runs fn on every shard's loop (through Execute) and waits for
// them, at most a second each. Never call it on a loop.
func (s *Server) eachShard(fn func(*shard)) {
	s.shards.Range(func(_, v any) bool {
		sh := v.(*shard)
		done := make(chan struct{})
		err := sh.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			defer close(done)
			fn(sh)
			return nil
		}))
		if err == nil {
			select {
			case <-done:
			case <-time.After(time.Second):
			}
		}
		return true
	})
}

// shardOf returns the shard of c's loop, creating it on first use. Loop-only.
func (s *Server) shardOf(c gnet.Conn) *shard {
	loop := c.EventLoop()
	if v, ok := s.shards.Load(loop); ok {
		return v.(*shard)
	}
	sh := newShard(s, loop, int(s.shardSeq.Add(1)-1))
	s.shards.Store(loop, sh)
	s.tickers.Add(1)
	go sh.runTicker(s.tickCtx)
	return sh
}

// now is the monotonic clock shards use, in ns since the server started.
func (s *Server) now() int64 { return int64(time.Since(s.epoch)) }

// OnBoot records the engine. Called once by gnet before the loops start.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

// anchor marks a shard's anchor connection (see anchorLoops).
type anchor struct{}

// OnOpen starts a session for a client, or records a loop anchor. Loop-only.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	sh := s.shardOf(c)
	if bc, ok := c.Context().(*pool.Conn); ok {
		bc.Opened(c) // a backend connection enrolled by reconcile
		return nil, gnet.None
	}
	if c.LocalAddr() != nil && c.LocalAddr().Network() == "unix" {
		accepted := sh.anchor == nil
		select {
		case s.anchorSeen <- accepted: // never blocks: sized for every attempt
		default:
		}
		if !accepted {
			return nil, gnet.Close // this loop is anchored already
		}
		sh.anchor = c
		c.SetContext(anchor{})
		return nil, gnet.None
	}
	sh.openSession(c)
	return nil, gnet.None
}

// OnTraffic reads whatever arrived for c. Loop-only.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	switch ctx := c.Context().(type) {
	case *Session:
		return ctx.onTraffic()
	case *pool.Conn:
		return ctx.OnTraffic()
	default:
		_, _ = c.Discard(-1)
		return gnet.None
	}
}

// OnClose ends c's session. Loop-only.
func (s *Server) OnClose(c gnet.Conn, err error) gnet.Action {
	switch ctx := c.Context().(type) {
	case *Session:
		ctx.onClose(err)
	case *pool.Conn:
		ctx.OnClosed(err)
	case anchor:
		// Only at engine stop.
	}
	return gnet.None
}

// logLimiter lets one log line through per second and counts the rest.
// Safe for concurrent use.
type logLimiter struct {
	next    atomic.Int64 // earliest time (server clock, ns) of the next line
	dropped atomic.Int64 // lines suppressed since the last one written
}

func (l *logLimiter) allow(now int64) (ok bool, dropped int64) {
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(time.Second)) {
		l.dropped.Add(1)
		return false, 0
	}
	return true, l.dropped.Swap(0)
}

// ShardInfo is one shard's numbers for the admin views.
type ShardInfo struct {
	Index    int   // the shard (event loop), as in the pool
	Sessions int64 // upgraded sessions open on it
}

// Shards reports every shard, by index. Safe for concurrent use.
func (s *Server) Shards() []ShardInfo {
	var out []ShardInfo
	s.shards.Range(func(_, v any) bool {
		sh := v.(*shard)
		out = append(out, ShardInfo{Index: sh.index, Sessions: sh.Sessions.Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}
