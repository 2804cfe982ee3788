package goroutineproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Proxy accepts client WebSocket sessions and binds each to a leased
// backend connection for its whole life. Start, Addr, Stats and Close are
// safe for concurrent use.
type Proxy struct {
	cfg      Config
	log      *zap.Logger
	pools    []*Pool
	rr       atomic.Uint64 // round-robin cursor over pools
	upgrader websocket.Upgrader

	ctx    context.Context // cancelled by Close: ends reconcile workers and waiting acquirers
	cancel context.CancelFunc
	ln     net.Listener
	srv    *http.Server
	wg     sync.WaitGroup // reconcile workers

	sessions, sessionsTotal, refused atomic.Int64
}

// New checks cfg and builds the proxy; Start listens.
func New(cfg Config) (*Proxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	writePool := &sync.Pool{} // write buffers are held only while a message is written
	dialer := &websocket.Dialer{
		HandshakeTimeout: cfg.DialTimeout,
		ReadBufferSize:   4096,
		WriteBufferPool:  writePool,
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger}
	p.upgrader = websocket.Upgrader{
		// ReadBufferSize 0 reuses net/http's 4 KiB reader for the session
		// instead of allocating a second one.
		WriteBufferPool: writePool,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	var ids atomic.Uint64
	for _, u := range cfg.Backends {
		p.pools = append(p.pools, newPool(u, &p.cfg, dialer, &ids))
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// Start listens, starts the reconcile workers (which fill the pools at
// once) and serves in the background.
func (p *Proxy) Start() error {
	ln, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		return fmt.Errorf("goroutineproxy: listen: %w", err)
	}
	p.ln = ln
	for _, pool := range p.pools {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			pool.reconcileLoop(p.ctx)
		}()
		pool.Signal()
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(p.log.Named("http")),
	}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("serve", zap.Error(err))
		}
	}()
	return nil
}

// Addr is the listen address once started.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// acquire leases a backend connection: round-robin over the pools without
// waiting, then, if every pool is empty, it signals them all and waits on
// its round-robin pick for at most AcquireTimeout.
func (p *Proxy) acquire() *backendConn {
	start := int(p.rr.Add(1))
	for i := range p.pools {
		if bc := p.pools[(start+i)%len(p.pools)].tryAcquire(); bc != nil {
			return bc
		}
	}
	for _, pool := range p.pools {
		pool.Signal()
	}
	return p.pools[start%len(p.pools)].acquireWait(p.ctx, p.cfg.AcquireTimeout)
}

// ServeHTTP runs one client session on net/http's connection goroutine:
// lease, upgrade, relay client->backend until either side ends, release.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bc := p.acquire()
	if bc == nil {
		p.refused.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no backend connection available", http.StatusServiceUnavailable)
		return
	}
	client, err := p.upgrader.Upgrade(w, r, nil)
	if err != nil {
		bc.pool.release(bc) // the upgrader already answered the client
		return
	}
	s := newSession(p, client, bc)
	p.sessions.Add(1)
	p.sessionsTotal.Add(1)
	defer p.sessions.Add(-1)
	s.relayToBackend()
}

// Close stops accepting, ends every session with 1001 and closes the pools.
func (p *Proxy) Close() error {
	p.cancel()
	err := p.srv.Close()
	p.wg.Wait()
	for _, pool := range p.pools {
		pool.inUse.Range(func(_, v any) bool {
			if s := v.(*backendConn).session.Load(); s != nil {
				s.closeClient(websocket.CloseGoingAway, "proxy shutting down")
			}
			return true
		})
	}
	for _, pool := range p.pools {
		pool.closeAll()
	}
	return err
}

// Stats is a snapshot of the proxy's counters.
type Stats struct {
	Sessions      int64       `json:"sessions"`
	SessionsTotal int64       `json:"sessions_total"`
	Refused       int64       `json:"refused"`
	Pools         []PoolStats `json:"pools"`
}

// Stats returns the counters. Safe for concurrent use.
func (p *Proxy) Stats() Stats {
	st := Stats{Sessions: p.sessions.Load(), SessionsTotal: p.sessionsTotal.Load(), Refused: p.refused.Load()}
	for _, pool := range p.pools {
		st.Pools = append(st.Pools, pool.Stats())
	}
	return st
}

// session is one client bound to one backend connection. Its handler
// goroutine writes client->backend; the backend connection's reader writes
// backend->client.
type session struct {
	p      *Proxy
	client *websocket.Conn
	bc     *backendConn

	idle      *time.Timer  // pings the client after ClientPing of silence
	done      atomic.Bool  // the session ended: the idle timer must not re-arm
	lastReset atomic.Int64 // unix ns when idle was last pushed back
	pinged    atomic.Bool  // a ping is out: the read deadline is armed
}

func newSession(p *Proxy, client *websocket.Conn, bc *backendConn) *session {
	s := &session{p: p, client: client, bc: bc}
	client.SetReadLimit(p.cfg.MaxMessageBytes)
	client.SetPongHandler(func(string) error { s.alive(); return nil })
	s.lastReset.Store(time.Now().UnixNano())
	s.idle = time.AfterFunc(p.cfg.ClientPing, s.pingClient)
	bc.session.Store(s)
	return s
}

// relayToBackend copies client messages to the backend until the client
// leaves or the backend connection breaks, then releases the connection.
func (s *session) relayToBackend() {
	defer s.end()
	backend := s.bc.ws
	for {
		mt, r, err := s.client.NextReader()
		if err != nil {
			return // the client closed (gorilla answered its close) or vanished
		}
		s.alive()
		_ = backend.SetWriteDeadline(time.Now().Add(s.p.cfg.WriteTimeout))
		w, err := backend.NextWriter(mt)
		if err != nil {
			s.bc.markBroken("write: " + err.Error())
			return
		}
		// gorilla's writer reads straight into its frame buffer.
		if _, err = io.Copy(w, r); err == nil {
			err = w.Close()
		}
		if err != nil {
			// Either the backend write failed, or the client failed in the
			// middle of a message, which leaves a message half-written on the
			// backend connection: WebSocket cannot abort a message, so the
			// connection cannot be reused either way.
			s.bc.markBroken("relay: " + err.Error())
			return
		}
	}
}

// toClient copies one backend message to the client. Runs on the backend
// connection's reader goroutine.
func (s *session) toClient(mt int, r io.Reader) {
	_ = s.client.SetWriteDeadline(time.Now().Add(s.p.cfg.WriteTimeout))
	w, err := s.client.NextWriter(mt)
	if err != nil {
		_ = s.client.Close()
		return
	}
	_, err = io.Copy(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = s.client.Close() // the handler goroutine sees it and ends the session
	}
}

// alive records traffic from the client: it clears an armed pong deadline
// and pushes the idle ping back (at most once a second, to keep timer
// resets off the per-message path).
func (s *session) alive() {
	if s.pinged.Swap(false) {
		_ = s.client.SetReadDeadline(time.Time{})
	}
	now := time.Now().UnixNano()
	if now-s.lastReset.Load() > int64(time.Second) {
		s.lastReset.Store(now)
		s.idle.Reset(s.p.cfg.ClientPing)
	}
}

// pingClient runs when the client has been silent for ClientPing: it pings
// and arms a read deadline that the pong (or any message) clears.
func (s *session) pingClient() {
	if s.done.Load() {
		return
	}
	s.pinged.Store(true)
	_ = s.client.SetReadDeadline(time.Now().Add(s.p.cfg.ClientPongTimeout))
	if err := s.client.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
		_ = s.client.Close()
	}
	// Keep pinging while the session lives and stays silent.
	s.idle.Reset(s.p.cfg.ClientPing)
}

// backendGone ends the session because its backend connection broke.
func (s *session) backendGone() {
	s.closeClient(websocket.CloseInternalServerErr, "backend connection lost")
}

// closeClient sends a close frame and closes the client socket; the handler
// goroutine then ends the session.
func (s *session) closeClient(code int, reason string) {
	msg := websocket.FormatCloseMessage(code, reason)
	_ = s.client.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = s.client.Close()
}

// end unbinds the backend connection and returns it to its pool.
func (s *session) end() {
	s.done.Store(true)
	s.idle.Stop()
	s.bc.pool.release(s.bc)
	_ = s.client.Close()
}
