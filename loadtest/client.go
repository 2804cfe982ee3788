package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"
)

// Session states. A session moves forward only.
const (
	stateDialing int32 = iota // dial and handshake in progress
	stateOpen                 // upgraded; senders may write
	stateClosing              // we started the close: errors from here on are expected
	stateDone                 // its reader ended
)

// senderTick bounds how often a sender wakes: slots due within the same
// millisecond go out in one batch, which keeps the generator's own
// scheduling cost flat however many sessions it drives.
const senderTick = time.Millisecond

// writeTimeout bounds one message write; a proxy that stops reading for
// this long fails the session rather than stalling its sender forever.
const writeTimeout = 10 * time.Second

// session is one client WebSocket session. Its reader goroutine owns
// recv and ends it; the one sender that owns its slot writes messages;
// ws is set before state becomes stateOpen and is read only after.
type session struct {
	id    uint32
	url   string
	ws    *websocket.Conn
	state atomic.Int32
	sent  atomic.Uint32 // messages written, by the owning sender (or the session goroutine at rate 0)
	recv  atomic.Uint32 // echoes received in order, by the reader
}

// genConfig is what the generator needs from the scenario.
type genConfig struct {
	Conns    int
	Size     int
	Binary   bool
	Rate     float64     // messages per second per session; 0 = one echo per session, then idle
	DialRate float64     // sessions opened per second; 0 = all at once
	URLs     []string    // session i dials URLs[i % len]
	TLS      *tls.Config // for wss:// URLs (nil: the system roots)
	Senders  int         // sender goroutines
	Shards   int         // latency recorder shards
}

// generator is the load client: it opens the sessions, paces messages,
// reads echoes and keeps the counts. Its methods are called by the run's
// control goroutine; the sessions' goroutines only touch their session,
// the recorder and the atomic counters.
type generator struct {
	cfg     genConfig
	layout  *payloadLayout
	msgType int
	epoch   time.Time // payload timestamps count from here (monotonic)
	dialer  *websocket.Dialer
	bufs    sync.Pool // *[]byte of size+1: one echo being read

	sessions []*session
	lat      *latencyRecorder

	dialsDone  atomic.Int64 // dials finished, successful or not
	opened     atomic.Int64 // sessions that reached stateOpen
	openNow    atomic.Int64 // sessions open right now
	lastOpen   atomic.Int64 // ns since epoch of the latest open
	allDialed  chan struct{}
	firstSends atomic.Int64 // the one message per session at rate 0

	setupMu sync.Mutex
	setup   *hdr.Histogram // dial start to 101, µs

	dialErrs, closes, writeErrs, badEchoes errorCounts

	sendCounts []paddedCount // per sender
	skipped    []paddedCount // per sender: slots dropped while behind
	stopSend   context.CancelFunc
	senders    sync.WaitGroup
	sessionsWG sync.WaitGroup // one per session goroutine (dial + read loop)
}

type paddedCount struct {
	n atomic.Int64
	_ [56]byte
}

func newGenerator(cfg genConfig) (*generator, error) {
	layout, err := newPayloadLayout(cfg.Size)
	if err != nil {
		return nil, err
	}
	if cfg.Conns <= 0 || len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("loadtest: need at least one connection and one URL")
	}
	if cfg.Senders <= 0 {
		cfg.Senders = 2
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 16
	}
	g := &generator{
		cfg:        cfg,
		layout:     layout,
		msgType:    websocket.TextMessage,
		epoch:      time.Now(),
		sessions:   make([]*session, cfg.Conns),
		lat:        newLatencyRecorder(cfg.Shards),
		allDialed:  make(chan struct{}),
		setup:      newLatencyHistogram(),
		sendCounts: make([]paddedCount, cfg.Senders),
		skipped:    make([]paddedCount, cfg.Senders),
	}
	if cfg.Binary {
		g.msgType = websocket.BinaryMessage
	}
	g.bufs.New = func() any { b := make([]byte, cfg.Size+1); return &b }
	g.dialer = &websocket.Dialer{
		NetDialContext:   (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		TLSClientConfig:  cfg.TLS,
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   4096,
		// A whole frame must fit, or gorilla splits the message into fragments.
		WriteBufferSize: max(4096, cfg.Size+14),
		// Idle sessions hold no write buffer.
		WriteBufferPool: &sync.Pool{},
	}
	for i := range g.sessions {
		g.sessions[i] = &session{id: uint32(i), url: cfg.URLs[i%len(cfg.URLs)]}
	}
	return g, nil
}

// now is the generator's clock: monotonic time since its epoch.
func (g *generator) now() time.Duration { return time.Since(g.epoch) }

// connect starts every session: all at once, or at DialRate. allDialed
// closes once every dial has finished. ctx cancels dials not yet started.
func (g *generator) connect(ctx context.Context) {
	if g.cfg.DialRate <= 0 {
		for _, s := range g.sessions {
			g.startSession(ctx, s)
		}
		return
	}
	go g.paceDials(ctx)
}

// paceDials starts sessions at DialRate per second, on the same schedule
// arithmetic as the senders.
func (g *generator) paceDials(ctx context.Context) {
	interval := time.Duration(float64(time.Second) * float64(len(g.sessions)) / g.cfg.DialRate)
	sch := newSchedule(interval, 0, 1, len(g.sessions))
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	started := 0
	for started < len(g.sessions) {
		next := sch.take(time.Since(start), func(slot int) {
			if started < len(g.sessions) {
				g.startSession(ctx, g.sessions[slot])
				started++
			}
		})
		if started == len(g.sessions) {
			return
		}
		timer.Reset(max(next-time.Since(start), senderTick))
		select {
		case <-ctx.Done():
			for _, s := range g.sessions[started:] {
				g.dialFinished(s, ctx.Err(), 0)
			}
			return
		case <-timer.C:
		}
	}
}

func (g *generator) startSession(ctx context.Context, s *session) {
	g.sessionsWG.Add(1)
	go g.runSession(ctx, s)
}

// runSession dials s, then becomes its reader until the session ends.
func (g *generator) runSession(ctx context.Context, s *session) {
	defer g.sessionsWG.Done()
	t0 := time.Now()
	ws, resp, err := g.dialer.DialContext(ctx, s.url, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		g.dialFinished(s, dialError(err, resp), 0)
		return
	}
	ws.SetReadLimit(int64(g.cfg.Size) * 2)
	s.ws = ws
	if !s.state.CompareAndSwap(stateDialing, stateOpen) {
		_ = ws.Close() // the run is closing already
		g.dialFinished(s, errors.New("closed while dialing"), 0)
		return
	}
	g.openNow.Add(1)
	g.dialFinished(s, nil, time.Since(t0))
	if g.cfg.Rate <= 0 {
		g.sendFirst(s)
	}
	g.readLoop(s)
}

// dialFinished counts one finished dial; setup is its duration on success.
func (g *generator) dialFinished(s *session, err error, setup time.Duration) {
	if err != nil {
		s.state.Store(stateDone)
		g.dialErrs.add(err.Error())
	} else {
		g.opened.Add(1)
		g.lastOpen.Store(int64(g.now()))
		g.setupMu.Lock()
		recordMicros(g.setup, setup)
		g.setupMu.Unlock()
	}
	if g.dialsDone.Add(1) == int64(len(g.sessions)) {
		close(g.allDialed)
	}
}

// sendFirst sends the one message of a session at rate 0 (the density
// scenario: prove the session works end to end, then hold it idle).
func (g *generator) sendFirst(s *session) {
	msg := make([]byte, g.layout.size())
	copy(msg, g.layout.template)
	g.write(s, msg)
	g.firstSends.Add(1)
}

// write sends one message on s. Called by the one goroutine that owns
// writes to s.
func (g *generator) write(s *session, msg []byte) bool {
	seq := s.sent.Load()
	now := g.now()
	g.layout.fill(msg, s.id, seq, int64(now))
	// Counted before the write so that an echo racing back finds it sent.
	s.sent.Store(seq + 1)
	_ = s.ws.SetWriteDeadline(g.epoch.Add(now + writeTimeout))
	if err := s.ws.WriteMessage(g.msgType, msg); err != nil {
		if s.state.Load() == stateOpen {
			g.writeErrs.add(connError(err))
		}
		return false
	}
	return true
}

// readLoop reads echoes until the session ends. A message is read into a
// pooled buffer, checked whole and timed.
func (g *generator) readLoop(s *session) {
	defer g.openNow.Add(-1)
	size := g.cfg.Size
	for {
		mt, r, err := s.ws.NextReader()
		if err != nil {
			g.readerEnded(s, err)
			return
		}
		bp := g.bufs.Get().(*[]byte)
		n, err := io.ReadFull(r, (*bp)[:size+1])
		now := g.now()
		switch {
		case err == nil: // longer than we ever send
			_, err = io.Copy(io.Discard, r)
			g.badEchoes.add("echo longer than sent")
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF): // end of message: the normal case
			err = nil
			g.checkEcho(s, mt, (*bp)[:n], now)
		}
		g.bufs.Put(bp)
		if err != nil {
			g.readerEnded(s, err)
			return
		}
	}
}

func (g *generator) checkEcho(s *session, mt int, msg []byte, now time.Duration) {
	if mt != g.msgType {
		g.badEchoes.add("echo with another message type")
		return
	}
	conn, seq, sent, err := g.layout.parse(msg)
	switch {
	case err != nil:
		g.badEchoes.add(err.Error())
	case conn != s.id:
		g.badEchoes.add("echo of another session's message")
	case seq != s.recv.Load():
		g.badEchoes.add("echo out of order or duplicated")
		s.recv.Store(seq + 1) // resynchronise, so one gap is one error
	default:
		s.recv.Store(seq + 1)
		g.lat.record(s.id, now-time.Duration(sent))
	}
}

// readerEnded classifies why s's reader stopped: after our close it is
// expected, before it the session was lost.
func (g *generator) readerEnded(s *session, err error) {
	prev := s.state.Swap(stateDone)
	if prev != stateClosing {
		g.closes.add(connError(err))
	}
	_ = s.ws.Close()
}

// startSenders starts the sender goroutines; they run until stopSenders.
func (g *generator) startSenders() {
	if g.cfg.Rate <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stopSend = cancel
	interval := time.Duration(float64(time.Second) / g.cfg.Rate)
	start := time.Now()
	for k := 0; k < g.cfg.Senders; k++ {
		sch := newSchedule(interval, k, g.cfg.Senders, len(g.sessions))
		g.senders.Add(1)
		go g.sendLoop(ctx, k, sch, start)
	}
}

// sendLoop is sender k: it walks its schedule and writes each due
// session's next message from one reused buffer.
func (g *generator) sendLoop(ctx context.Context, k int, sch *schedule, start time.Time) {
	defer g.senders.Done()
	msg := make([]byte, g.layout.size())
	copy(msg, g.layout.template)
	timer := time.NewTimer(0)
	defer timer.Stop()
	sent := &g.sendCounts[k].n
	send := func(slot int) {
		s := g.sessions[slotSession(slot, k, g.cfg.Senders)]
		if s.state.Load() == stateOpen && g.write(s, msg) {
			sent.Add(1)
		}
	}
	for {
		next := sch.take(time.Since(start), send)
		g.skipped[k].n.Store(sch.skipped)
		timer.Reset(max(next-time.Since(start), senderTick))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// stopSenders stops the senders and waits for them.
func (g *generator) stopSenders() {
	if g.stopSend != nil {
		g.stopSend()
		g.senders.Wait()
	}
}

// sent is the number of messages written so far.
func (g *generator) sent() int64 {
	n := g.firstSends.Load()
	for i := range g.sendCounts {
		n += g.sendCounts[i].n.Load()
	}
	return n
}

// skippedSlots is the number of sends dropped because a sender fell behind.
func (g *generator) skippedSlots() int64 {
	var n int64
	for i := range g.skipped {
		n += g.skipped[i].n.Load()
	}
	return n
}

// outstanding is messages sent whose echo has not arrived.
func (g *generator) outstanding() int64 {
	var n int64
	for _, s := range g.sessions {
		n += int64(s.sent.Load()) - int64(s.recv.Load())
	}
	return n
}

// closeAll closes every session with a close handshake (1000), waiting at
// most grace for the replies, then cuts whatever is left.
func (g *generator) closeAll(grace time.Duration) {
	deadline := time.Now().Add(grace)
	var wg sync.WaitGroup
	var open []*session             // sessions whose ws we may touch
	sem := make(chan struct{}, 256) // close frames go out concurrently, bounded
	for _, s := range g.sessions {
		prev := s.state.Load()
		for prev == stateDialing || prev == stateOpen {
			if s.state.CompareAndSwap(prev, stateClosing) {
				break
			}
			prev = s.state.Load()
		}
		if prev != stateOpen {
			continue // a session still dialing closes itself when its dial returns
		}
		open = append(open, s)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "loadtest done")
			if err := s.ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
				_ = s.ws.Close()
			}
		}()
	}
	wg.Wait()
	if !waitTimeout(&g.sessionsWG, time.Until(deadline)) {
		for _, s := range open {
			_ = s.ws.NetConn().Close()
		}
		g.sessionsWG.Wait()
	}
}

// waitTimeout waits for wg at most d; false if it timed out.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// setupSummary returns the session setup times.
func (g *generator) setupSummary() Percentiles {
	g.setupMu.Lock()
	defer g.setupMu.Unlock()
	return summarize(g.setup)
}

// errorCounts counts errors by a short description. Safe for concurrent
// use; errors are rare, so one mutex is enough.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errorCounts) add(kind string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]int64)
	}
	e.m[kind]++
	e.mu.Unlock()
}

// snapshot returns a copy of the counts.
func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// describeCounts renders counts as "3 connection reset, 1 close 1011".
func describeCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%d %s", m[k], k)
	}
	return out
}

// dialError names why a dial failed, in words that point at the cause.
func dialError(err error, resp *http.Response) error {
	if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
		return fmt.Errorf("handshake answered HTTP %d", resp.StatusCode)
	}
	return errors.New("dial: " + connError(err))
}

// connError names a connection error by its kind rather than its text,
// which carries addresses and would make every error unique.
func connError(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		if ce.Code == websocket.CloseAbnormalClosure {
			return "TCP closed without a close frame (1006)"
		}
		return fmt.Sprintf("close %d from the peer", ce.Code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files in the loadtest"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, net.ErrClosed):
		return "closed locally"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	}
	return err.Error()
}
