package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/iplimit"
	"github.com/wsgate/wsgate/internal/looptls"
	"github.com/wsgate/wsgate/internal/proxyproto"
	"github.com/wsgate/wsgate/internal/ratelog"
)

// Server is one gnet engine serving WebSocket sessions on every event loop.
// Start, Addr, Stats, Shutdown, Stop, Done and Err are safe for concurrent
// use; the gnet callbacks run on the loops.
type Server struct {
	gnet.BuiltinEventEngine

	cfg   Config
	log   *zap.Logger
	stats Stats
	epoch time.Time // shard clocks count from here (monotonic)

	eng          gnet.Engine   // set in OnBoot, read after booted is closed
	booted       chan struct{} // closed by OnBoot
	shards       sync.Map      // gnet.EventLoop -> *shard, each created on its loop
	loops        []*Shard      // every shard by index; set by Start before the acceptor runs
	shardSeq     atomic.Int32  // shards created so far (names their index)
	shuttingDown atomic.Bool   // Shutdown began: new connections are refused
	nextID       atomic.Uint64 // session ids

	ln           *net.TCPListener // plain client listener (nil if none), owned by its acceptor (closed by Shutdown or Stop)
	tlsLn        *net.TCPListener // TLS client listener (nil if none), likewise
	nextLoop     atomic.Uint64    // round-robin start among loops with equal load (acceptors and handshakes)
	acceptorDone sync.WaitGroup
	tlsSlots     chan struct{} // one per TLS handshake running; its capacity is Config.TLSHandshakes
	// listening ends when the listeners close: a TLS acceptor waiting for
	// a handshake slot gives up, and handshakes under way are cut.
	listening       context.Context
	closeListenersC context.CancelFunc
	handshakes      sync.WaitGroup // TLS handshakes running

	anchorAddr  string     // path of the private unix listener used to find the loops (removed once they are)
	anchorSeen  chan bool  // OnOpen of an anchor: true if it anchored a new loop
	anchorConns []net.Conn // our ends of the anchors; owned by Start, closed by Stop

	stopping atomic.Bool   // Stop was called: the engine ending is expected
	dead     chan struct{} // closed when the engine has ended, for whatever reason
	deadErr  atomic.Pointer[error]

	tickCtx   context.Context // cancelled by Stop; ends the shard tickers
	stopTicks context.CancelFunc
	tickers   sync.WaitGroup
	stopOnce  sync.Once
	logLimits [numCloseReasons]ratelog.Limiter
	acceptLog ratelog.Limiter // accept and enroll failures
	refuseLog ratelog.Limiter // connections refused at accept
	panicLog  ratelog.Limiter // callbacks that panicked
	flowLog   ratelog.Limiter // pausing or resuming a connection failed
	tlsLog    ratelog.Limiter // TLS handshakes and connections that failed
	proxyLog  ratelog.Limiter // PROXY headers refused
	perIPLog  ratelog.Limiter // connections past a per-IP limit

	trusted     *proxyproto.Trusted // peers that may send a PROXY header (Config.ProxyProtocol)
	perIP       *iplimit.Limiter    // per-IP limits; nil: none
	sweeperDone sync.WaitGroup      // the per-IP table's sweeper (sweepPerIP)
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
		dead:   make(chan struct{}),
	}
	s.listening, s.closeListenersC = context.WithCancel(context.Background())
	s.anchorSeen = make(chan bool, 8*cfg.Loops+8)
	s.tickCtx, s.stopTicks = context.WithCancel(context.Background())
	if err := s.newEdge(); err != nil {
		return nil, err
	}
	return s, nil
}

// Stats returns the live counters. Safe for concurrent use.
func (s *Server) Stats() *Stats { return &s.stats }

// Config returns the effective configuration (defaults applied).
func (s *Server) Config() Config { return s.cfg }

// Start listens and runs the event loops in the background; it returns once
// every loop has a shard and the acceptor runs, or with the reason the
// server could not start.
func (s *Server) Start() error {
	if err := s.listen(); err != nil {
		return err
	}
	// The private listener's socket lives in a directory of its own, named
	// with our pid, only while the loops are found: once every loop is
	// anchored it goes, so nothing is left on disk and no other process
	// can connect. (gnet cannot listen on an abstract socket: its address
	// parser takes "@" for a URL's user info.) A directory a killed
	// process left behind is removed by the next start.
	removeStaleAnchors()
	dir, err := os.MkdirTemp("", fmt.Sprintf("wsgate-anchor-%d-", os.Getpid()))
	if err != nil {
		s.closeListeners()
		return fmt.Errorf("server: anchor dir: %w", err)
	}
	s.anchorAddr = filepath.Join(dir, "loops.sock")
	defer func() { _ = os.RemoveAll(dir) }()
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.cfg.Loops),
		gnet.WithLoadBalancing(gnet.LeastConnections),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(gnetLogger(s.log)),
	}
	go s.runEngine(opts)
	select {
	case <-s.booted:
	case <-s.dead:
		s.closeListeners()
		return fmt.Errorf("server: event loops: %w", s.Err())
	}
	if err := s.anchorLoops(); err != nil {
		s.Stop()
		return err
	}
	s.loops = make([]*Shard, s.cfg.Loops)
	s.shards.Range(func(_, v any) bool {
		sh := v.(*Shard)
		s.loops[sh.index] = sh
		return true
	})
	s.stats.shards.Store(&s.loops)
	if s.perIP != nil {
		s.sweeperDone.Add(1)
		go s.sweepPerIP()
	}
	if s.ln != nil {
		s.acceptorDone.Add(1)
		go s.runAcceptor(s.ln, false)
	}
	if s.tlsLn != nil {
		s.tlsSlots = make(chan struct{}, s.cfg.TLSHandshakes)
		s.acceptorDone.Add(1)
		go s.runAcceptor(s.tlsLn, true)
	}
	s.log.Info("listening", zap.String("addr", s.Addr()), zap.String("tls_addr", s.TLSAddr()), zap.Int("loops", s.cfg.Loops),
		zap.Int("max_conns", s.cfg.MaxConns))
	return nil
}

// listen opens the plain listener and the TLS one, as configured.
func (s *Server) listen() error {
	if s.cfg.Addr != "" {
		ln, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("server: listen %s: %w", s.cfg.Addr, err)
		}
		s.ln = ln.(*net.TCPListener)
	}
	if s.cfg.TLSAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.TLSAddr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("server: listen %s (TLS): %w", s.cfg.TLSAddr, err)
		}
		s.tlsLn = ln.(*net.TCPListener)
	}
	return nil
}

func (s *Server) closeListeners() {
	s.closeListenersC()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.tlsLn != nil {
		_ = s.tlsLn.Close()
	}
}

// runEngine runs gnet until it stops. If it stops without Stop asking,
// the server is dead: Done is closed and Err says why, so the process can
// exit and be restarted rather than linger without its loops.
func (s *Server) runEngine(opts []gnet.Option) {
	err := gnet.Rotate(s, []string{"unix://" + s.anchorAddr}, opts...)
	if err == nil && !s.stopping.Load() {
		err = errors.New("server: the event engine stopped by itself")
	}
	if err != nil && !s.stopping.Load() {
		s.fail(err)
	}
	s.markDead(err)
}

// fail records why the server cannot go on (the first reason wins), logs
// it, and stops accepting.
func (s *Server) fail(err error) {
	if s.deadErr.CompareAndSwap(nil, &err) {
		s.log.Error("server failed", zap.Error(err))
	}
	s.closeListeners()
}

func (s *Server) markDead(err error) {
	if err != nil {
		s.deadErr.CompareAndSwap(nil, &err)
	}
	close(s.dead)
}

// Done is closed once the event engine has ended, after Stop or by itself.
// Safe for concurrent use.
func (s *Server) Done() <-chan struct{} { return s.dead }

// Err is why the server failed (its engine stopped without Stop asking,
// the acceptor died), nil while it is healthy and after a clean Stop.
// Safe for concurrent use.
func (s *Server) Err() error {
	if p := s.deadErr.Load(); p != nil {
		return *p
	}
	return nil
}

// gnetLogger is gnet's logger: its own lines name the private listener,
// not ours, so warnings and errors only.
func gnetLogger(log *zap.Logger) *zap.SugaredLogger {
	log = log.Named("gnet")
	if log.Core().Enabled(zap.InfoLevel) { // (raising a level the core already drops is an error)
		log = log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	}
	return log.Sugar()
}

// removeStaleAnchors removes the anchor directories of processes that are
// gone (killed while starting).
func removeStaleAnchors() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "wsgate-anchor-*"))
	for _, dir := range dirs {
		rest := strings.TrimPrefix(filepath.Base(dir), "wsgate-anchor-")
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
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

// Addr is the plain listener's bound address (useful with port 0), "" if
// there is none.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// TLSAddr is the TLS listener's bound address, "" if there is none.
func (s *Server) TLSAddr() string {
	if s.tlsLn == nil {
		return ""
	}
	return s.tlsLn.Addr().String()
}

// Shutdown refuses new sessions (503), lets open ones end by themselves
// for the configured grace period, sends close 1001 to those left, waits
// until they are gone or ctx ends, closes the backend connections with
// close 1001, and stops the engine.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shuttingDown.Store(true)
	s.closeListeners() // no new connection may keep waitSessions waiting
	s.acceptorDone.Wait()
	s.handshakes.Wait()
	var err error
	if s.cfg.ShutdownGrace > 0 {
		err = s.waitSessions(ctx, s.cfg.ShutdownGrace)
	}
	if err == nil || errors.Is(err, errGraceOver) {
		s.eachShard(func(sh *Shard) { sh.closeAll() })
		err = s.waitSessions(ctx, 0)
	}
	if fn := s.cfg.OnShutdown; fn != nil {
		s.eachShard(fn)
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

// Stop closes every connection at once and waits for the engine, the loops,
// the acceptor and the shard tickers to end.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		s.closeListeners()
		s.acceptorDone.Wait()
		s.handshakes.Wait()
		s.stopTicks()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.eng.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Debug("engine stop", zap.Error(err))
		}
		<-s.dead
		s.tickers.Wait()
		s.sweeperDone.Wait()
		for _, c := range s.anchorConns {
			_ = c.Close()
		}
	})
}

// eachShard runs fn on every shard's loop (through Execute) and waits for
// them, at most a second each. Never call it on a loop.
func (s *Server) eachShard(fn func(*Shard)) {
	s.shards.Range(func(_, v any) bool {
		sh := v.(*Shard)
		done := make(chan struct{})
		err := sh.Run(func() {
			defer close(done)
			fn(sh)
		})
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
func (s *Server) shardOf(c gnet.Conn) *Shard {
	loop := c.EventLoop()
	if v, ok := s.shards.Load(loop); ok {
		return v.(*Shard)
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

// ConnHandler is what the server calls for a connection that is not a
// client session: a backend connection, enrolled by whoever dialed it with
// the handler as its gnet context (the pool, the relay while leased). Its
// methods are Loop-only; the server runs each as a loop callback (work it
// defers runs after it).
type ConnHandler interface {
	OnOpen(c gnet.Conn)
	OnTraffic() gnet.Action
	OnClose(err error)
}

// OnOpen starts a session for a client, or records a loop anchor. Loop-only.
func (s *Server) OnOpen(c gnet.Conn) (out []byte, action gnet.Action) {
	sh := s.shardOf(c)
	sh.queue.Enter()
	defer sh.leave()
	defer s.recoverCallback(c, "OnOpen", &action)
	switch ctx := c.Context().(type) {
	case *acceptedConn:
		ctx.opened.Store(true)
		sh.openSession(c, ctx)
		return nil, gnet.None
	case ConnHandler:
		ctx.OnOpen(c)
		return nil, gnet.None
	}
	// Only anchors come through gnet's own (private) listener.
	accepted := sh.anchor == nil && s.loops == nil
	if accepted {
		if err := sh.findPoller(c); err != nil {
			s.log.Error("cannot pause reads on this event loop; refusing to run without flow control", zap.Error(err))
			accepted = false
		}
	}
	if accepted {
		sh.anchor = c
		c.SetContext(anchor{})
		if fn := s.cfg.OnShard; fn != nil {
			fn(sh) // before Start hears of the anchor: what it attaches is ready when Start returns
		}
	}
	select {
	case s.anchorSeen <- accepted: // never blocks: sized for every attempt
	default:
	}
	if !accepted {
		return nil, gnet.Close // this loop is anchored already, or a stranger
	}
	return nil, gnet.None
}

// OnTraffic reads whatever arrived for c. Loop-only.
func (s *Server) OnTraffic(c gnet.Conn) (action gnet.Action) {
	sh := s.shardOf(c)
	sh.queue.Enter()
	defer sh.leave()
	defer s.recoverCallback(c, "OnTraffic", &action)
	switch ctx := c.Context().(type) {
	case *Session:
		action = ctx.onTraffic()
		if t, ok := ctx.conn.(*looptls.Conn); ok && (action == gnet.Close || t.ReadErr() != nil) {
			// gnet closes the raw connection: TLS says goodbye first, and
			// after the session's answer to what came before the end.
			t.CloseNotify()
		}
		return action
	case ConnHandler:
		action = ctx.OnTraffic()
		if n, ok := ctx.(interface{ CloseNotify() }); ok && action == gnet.Close {
			n.CloseNotify()
		}
		return action
	default:
		_, _ = c.Discard(-1)
		return gnet.None
	}
}

// OnClose ends c's session. Loop-only.
func (s *Server) OnClose(c gnet.Conn, err error) (action gnet.Action) {
	sh := s.shardOf(c)
	sh.queue.Enter()
	defer sh.leave()
	defer s.recoverCallback(nil, "OnClose", &action)
	sh.writer.Forget(c) // never write to a closed descriptor (it may be reused already); write out a batch that may hold its bytes
	switch ctx := c.Context().(type) {
	case *Session:
		ctx.onClose(err)
	case ConnHandler:
		sh.Forget(c)
		ctx.OnClose(err)
	case anchor:
		// Only at engine stop.
	}
	return gnet.None
}

// leave ends a loop callback: at the outermost one, paused connections are
// checked and the deferred work runs.
func (sh *Shard) leave() {
	if sh.queue.Outermost() {
		sh.checkPaused()
	}
	sh.queue.Leave()
}

// recoverCallback keeps a bug in one connection's callback from taking
// the process and every other session with it: the panic is logged
// (rate-limited, with its stack) and counted, and c is closed.
func (s *Server) recoverCallback(c gnet.Conn, callback string, action *gnet.Action) {
	r := recover()
	if r == nil {
		return
	}
	s.stats.Panics.Add(1)
	if c != nil {
		if sess, ok := c.Context().(*Session); ok {
			sess.setReason(ReasonInternalError)
		}
	}
	s.limitedLog(zap.ErrorLevel, &s.panicLog, "event loop callback panicked; closing its connection",
		zap.String("callback", callback), zap.Any("panic", r), zap.StackSkip("stack", 1))
	if c != nil {
		*action = gnet.Close
	}
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
		sh := v.(*Shard)
		out = append(out, ShardInfo{Index: sh.index, Sessions: sh.Sessions.Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// newFrameReader is a reader of client frames with the configured limits.
func (s *Server) newFrameReader() codec.FrameReader {
	return codec.NewFrameReader(codec.RoleServer, s.cfg.MaxFrameBytes, s.cfg.MaxMessageBytes)
}

// Shard returns shard i (an event loop), nil before Start. Safe for
// concurrent use after Start.
func (s *Server) Shard(i int) *Shard {
	if i < 0 || i >= len(s.loops) {
		return nil
	}
	return s.loops[i]
}
