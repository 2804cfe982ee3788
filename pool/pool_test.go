package pool

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/internal/framewrite"
	"github.com/wsgate/wsgate/internal/loopq"
	"github.com/wsgate/wsgate/internal/wheel"
)

// fakeConn stands in for a gnet connection: inbound bytes are what the
// test puts in, writes are recorded, Close runs OnClose as gnet would
// (later, through the loop: here when the test calls flushCloses).
type fakeConn struct {
	gnet.Conn
	c       *Conn
	ctx     any
	in      []byte
	out     [][]byte
	pending int // what OutboundBuffered reports: bytes the peer has not read
	closed  bool
	failAt  int // the failAt-th write fails (gnet closed the connection inside it); 0: none
}

func (f *fakeConn) Peek(int) ([]byte, error) { return f.in, nil }
func (f *fakeConn) Discard(n int) (int, error) {
	if n <= 0 || n >= len(f.in) {
		n = len(f.in)
	}
	f.in = f.in[n:]
	return n, nil
}
func (f *fakeConn) InboundBuffered() int  { return len(f.in) }
func (f *fakeConn) OutboundBuffered() int { return f.pending }
func (f *fakeConn) Fd() int               { return -1 }
func (f *fakeConn) Context() any          { return f.ctx }
func (f *fakeConn) SetContext(ctx any)    { f.ctx = ctx }
func (f *fakeConn) Writev(bs [][]byte) (int, error) {
	var b []byte
	for _, x := range bs {
		b = append(b, x...)
	}
	return f.Write(b)
}
func (f *fakeConn) Write(b []byte) (int, error) {
	if f.failAt > 0 && len(f.out)+1 == f.failAt {
		f.closed = true
		f.c.OnClose(errors.New("broken pipe")) // gnet runs OnClose inside the write
		return 0, errors.New("broken pipe")
	}
	f.out = append(f.out, append([]byte(nil), b...))
	return len(b), nil
}
func (f *fakeConn) Close() error { f.closed = true; return nil }

// fakeLoop is the shard a ShardPool attaches to: a wheel, a writer, and
// the deferred work of the callback the test is in.
type fakeLoop struct {
	wheel  *wheel.Wheel
	writer *framewrite.Writer
	queue  loopq.Queue
}

func (l *fakeLoop) Loop() gnet.EventLoop       { return nil }
func (l *fakeLoop) Wheel() *wheel.Wheel        { return l.wheel }
func (l *fakeLoop) Writer() *framewrite.Writer { return l.writer }
func (l *fakeLoop) Defer(fn func())            { l.queue.Defer(fn) }
func (l *fakeLoop) Run(fn func()) error        { l.queue.Defer(fn); return nil }

// session is a fake client session waiting for a connection, and the
// relay's side of a connection leased to it (Bind it to hear LeaseEnded).
type session struct {
	waiting bool
	conn    *Conn
	gone    ws.StatusCode // the code LeaseEnded gave
	paused  bool          // the relay does not read the connection (ReadPaused)
}

func (s *session) LeaseEnded(code ws.StatusCode, _ string) { s.gone = code }
func (s *session) ReadPaused() bool                        { return s.paused }

func (s *session) StillWaiting() bool { return s.waiting }
func (s *session) Granted(c *Conn) bool {
	if !s.waiting {
		return false
	}
	s.waiting = false
	s.conn = c
	return true
}

func textFrame(p string) []byte { return append([]byte{0x81, byte(len(p))}, p...) }

type fixture struct {
	t     *testing.T
	pool  *Pool
	shard *ShardPool
	loop  *fakeLoop
	conns []*fakeConn
}

func newFixture(t *testing.T, list ...Settings) *fixture {
	t.Helper()
	p := New(Config{Shards: 1, MaxFrameBytes: 1 << 20, MaxMessageBytes: 1 << 20})
	for i := range list {
		st, err := list[i].Normalize()
		if err != nil {
			t.Fatal(err)
		}
		list[i] = st
	}
	if err := p.SetBackends(list); err != nil {
		t.Fatal(err)
	}
	sh := p.Shard(0)
	loop := &fakeLoop{wheel: wheel.New(64, 1e6, 1e9), writer: framewrite.New()}
	sh.Attach(loop)
	return &fixture{t: t, pool: p, shard: sh, loop: loop}
}

// callback runs fn as a loop callback: work it defers runs after it.
func (f *fixture) callback(fn func()) {
	f.loop.queue.Enter()
	fn()
	f.loop.queue.Leave()
}

// enroll adds one connection to backend b as reconcile would.
func (f *fixture) enroll(b *Backend) *fakeConn {
	f.t.Helper()
	if !b.Reserve(0) {
		f.t.Fatal("reserve refused")
	}
	c := f.shard.newConn(b)
	fc := &fakeConn{c: c, ctx: c}
	f.callback(func() { c.OnOpen(fc) })
	f.conns = append(f.conns, fc)
	return fc
}

// flushCloses delivers gnet's OnClose for every connection closed so far.
func (f *fixture) flushCloses() {
	for _, fc := range f.conns {
		if fc.closed && fc.c.state != StateClosed {
			f.callback(func() { fc.c.OnClose(nil) })
		}
	}
}

// release ends c's lease as a session's end does, in a callback.
func (f *fixture) release(c *Conn, clean bool) {
	f.callback(func() { f.shard.Release(c, clean) })
}

func (f *fixture) checkCounters() {
	f.t.Helper()
	for _, b := range f.pool.Backends() {
		n := f.shard.Recount()[b]
		sum := b.Dialing.Load() + b.Idle.Load() + b.Leased.Load() + b.Releasing.Load() + b.Closing.Load()
		if int64(n.Idle) != b.Idle.Load() || int64(n.Leased) != b.Leased.Load() || int64(n.Closing) != b.Closing.Load() ||
			sum != b.Total.Load() || (b.Settings().Max > 0 && b.Total.Load() > int64(b.Settings().Max)) {
			f.t.Fatalf("backend %d: recount %+v; counters total %d idle %d leased %d closing %d", b.ID, n,
				b.Total.Load(), b.Idle.Load(), b.Leased.Load(), b.Closing.Load())
		}
	}
}

func TestReserveNeverPassesMax(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Max: 3})
	b := f.pool.Backends()[0]
	for i := 0; i < 3; i++ {
		f.enroll(b)
	}
	if b.Reserve(0) {
		t.Fatal("a fourth reservation passed Max 3")
	}
	if !b.AtMax() || b.MaxReached.Load() != 1 || !b.NoteAtMax() || b.NoteAtMax() {
		t.Fatalf("at max: AtMax %v, reached %d; NoteAtMax must be true once per episode", b.AtMax(), b.MaxReached.Load())
	}
	f.checkCounters()
	c := f.shard.Acquire(&session{}, DefaultGroup)
	f.release(c, false) // not clean: closed
	f.flushCloses()
	f.checkCounters()
	if !b.Reserve(0) {
		t.Fatal("room freed by a close was not reusable")
	}
	if b.AtMax() {
		t.Fatal("still at max after a reservation passed")
	}
	b.DialAborted(0)
	f.checkCounters()
}

func TestLeaseReleasePolicies(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		st                     Settings
		idleAfter, closedAfter int64
	}{
		{"reuse", Settings{Policy: PolicyReuse}, 1, 0},
		{"close", Settings{Policy: PolicyClose}, 0, 1},
		{"reset", Settings{Policy: PolicyReset, ResetMessage: "R", ResetAck: "A"}, 0, 0}, // releasing until the ack
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.st.URL = "ws://a:1/"
			f := newFixture(t, tc.st)
			b := f.pool.Backends()[0]
			fc := f.enroll(b)
			s := &session{}
			c := f.shard.Acquire(s, DefaultGroup)
			if c == nil || b.Leased.Load() != 1 || b.Idle.Load() != 0 {
				t.Fatalf("lease: conn %v, leased %d idle %d", c, b.Leased.Load(), b.Idle.Load())
			}
			f.release(c, true)
			f.flushCloses()
			if b.Idle.Load() != tc.idleAfter || b.Closed.Load() != tc.closedAfter {
				t.Fatalf("after release: idle %d closed %d", b.Idle.Load(), b.Closed.Load())
			}
			if tc.st.Policy == PolicyReset {
				if b.Releasing.Load() != 1 || len(fc.out) == 0 {
					t.Fatalf("reset: releasing %d, %d writes", b.Releasing.Load(), len(fc.out))
				}
				fc.in = textFrame("A")
				f.callback(func() { c.OnTraffic() })
				if b.Idle.Load() != 1 || b.Releases.Load() != 1 {
					t.Fatalf("after ack: idle %d releases %d", b.Idle.Load(), b.Releases.Load())
				}
			}
			f.checkCounters()
		})
	}
}

// TestReleaseDuringTrafficKeepsFramesFromNextSession: a session ends (and
// releases its connection) inside a callback while backend frames of the
// old session are arriving, and another session waits. The release is
// decided after the callback, with those frames still buffered: the
// connection is closed, never handed to the waiting session.
func TestReleaseDuringTrafficKeepsFramesFromNextSession(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Max: 1, Policy: PolicyReuse})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	c := f.shard.Acquire(&session{}, DefaultGroup)
	next := &session{waiting: true}
	f.callback(func() {
		if f.shard.Acquire(next, DefaultGroup) != nil {
			t.Fatal("second acquire got a connection with Max 1")
		}
	})
	f.callback(func() {
		f.shard.Release(c, true) // the session ends mid-callback
		fc.in = append(textFrame("A-1"), textFrame("A-2")...)
		c.OnTraffic() // the old session's frames arrive before the release is decided
		if len(fc.in) == 0 {
			t.Fatal("the pool read the old session's frames before deciding")
		}
	})
	f.flushCloses()
	if next.conn != nil {
		t.Fatal("the waiting session was handed a connection holding the old session's frames")
	}
	if b.Closed.Load() != 1 {
		t.Fatalf("closed %d, want the connection closed", b.Closed.Load())
	}
	f.checkCounters()
}

// TestCloseDuringTrafficStopsTheLoop: when a write during OnTraffic closes
// the connection (gnet runs OnClose inside the write), the loop stops and
// touches neither the buffer nor the socket again.
func TestCloseDuringTrafficStopsTheLoop(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/"})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	ping := []byte{0x89, 0x00}
	fc.in = append(append([]byte(nil), ping...), ping...)
	fc.failAt = len(fc.out) + 1 // the first pong fails
	f.callback(func() { fc.c.OnTraffic() })
	if len(fc.out) != 0 || len(fc.in) != 4 {
		t.Fatalf("after the connection closed: %d writes, %d bytes consumed", len(fc.out), 4-len(fc.in))
	}
	if b.Total.Load() != 0 || b.Failures.Load() != 1 {
		t.Fatalf("total %d failures %d", b.Total.Load(), b.Failures.Load())
	}
	f.checkCounters()
}

func TestUnhealthyBackendStillServesIdleWhenNothingElse(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/"}, Settings{URL: "ws://b:1/"})
	a, b := f.pool.Backends()[0], f.pool.Backends()[1]
	f.enroll(a)
	f.enroll(a)
	f.enroll(b)
	a.healthy.Store(false)
	if got := f.shard.Acquire(&session{}, DefaultGroup); got.Backend() != b {
		t.Fatalf("picked %s while a healthy backend had an idle connection", got.Backend().Addr)
	}
	if got := f.shard.Acquire(&session{}, DefaultGroup); got == nil || got.Backend() != a {
		t.Fatal("the unhealthy backend's live idle connection was not used as a last resort")
	}
	if !f.shard.Available(DefaultGroup) {
		t.Fatal("not available with an idle connection left")
	}
}

func TestWaiterQueueStaysBounded(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/"})
	for i := 0; i < 1000; i++ {
		s := &session{waiting: true}
		if f.shard.Acquire(s, DefaultGroup) != nil {
			t.Fatal("no connection should be idle")
		}
		s.waiting = false // timed out
		f.shard.StopWaiting(DefaultGroup)
	}
	if n := len(f.shard.waiters[DefaultGroup]); n > 64 {
		t.Fatalf("%d stale waiters kept", n)
	}
}

func TestSettingsValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   Settings
	}{
		{"bad url", Settings{URL: "http//x"}},
		{"ftp", Settings{URL: "ftp://x:1/"}},
		{"negative target", Settings{URL: "ws://x:1/", Target: -1}},
		{"target over max", Settings{URL: "ws://x:1/", Target: 10, Max: 5}},
		{"reset ack without message", Settings{URL: "ws://x:1/", Policy: PolicyReset, ResetAck: "ok"}},
		{"negative duration", Settings{URL: "ws://x:1/", PingInterval: -1}},
	} {
		if _, err := tc.st.Normalize(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	p := New(Config{Shards: 1})
	st, _ := Settings{URL: "ws://x:1/"}.Normalize()
	if err := p.SetBackends([]Settings{st, st}); err == nil {
		t.Error("duplicate backend accepted")
	}
}

func TestPauseAndDrain(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Policy: PolicyReuse})
	b := f.pool.Backends()[0]
	f.enroll(b)
	f.enroll(b)
	s := &session{}
	c := f.shard.Acquire(s, DefaultGroup)
	b.Pause()
	if f.shard.Acquire(&session{waiting: true}, DefaultGroup) != nil {
		t.Fatal("a paused backend leased a connection")
	}
	f.shard.StopWaiting(DefaultGroup)
	f.release(c, true) // a paused backend keeps its connections
	if b.Idle.Load() != 2 || b.Closed.Load() != 0 {
		t.Fatalf("paused: idle %d closed %d", b.Idle.Load(), b.Closed.Load())
	}
	b.Resume()
	c = f.shard.Acquire(s, DefaultGroup)
	b.Drain()
	f.shard.Sweep() // the idle one goes now
	f.flushCloses()
	if b.Idle.Load() != 0 || b.Leased.Load() != 1 {
		t.Fatalf("draining: idle %d leased %d", b.Idle.Load(), b.Leased.Load())
	}
	f.shard.Release(c, true) // the leased one goes when its session ends
	f.flushCloses()
	if b.Total.Load() != 0 {
		t.Fatalf("drained backend still holds %d connections", b.Total.Load())
	}
	f.checkCounters()
}

func TestWeightsSplitNewSessions(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Weight: 3, Max: 2000}, Settings{URL: "ws://b:1/", Weight: 1, Max: 2000})
	a, b := f.pool.Backends()[0], f.pool.Backends()[1]
	for i := 0; i < 1000; i++ {
		f.enroll(a)
		f.enroll(b)
	}
	for i := 0; i < 800; i++ {
		f.shard.Acquire(&session{}, DefaultGroup)
	}
	// 3:1 of 800 is 600:200; allow a wide margin for randomness.
	if got := a.Leases.Load(); got < 540 || got > 660 {
		t.Fatalf("weight 3 backend got %d of 800 leases (b: %d), want about 600", got, b.Leases.Load())
	}
}

func TestGroupsAreSeparate(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Group: "stt"}, Settings{URL: "ws://b:1/", Group: "tts"})
	a, b := f.pool.Backends()[0], f.pool.Backends()[1]
	f.enroll(a)
	f.enroll(b)
	if c := f.shard.Acquire(&session{}, "tts"); c == nil || c.Backend() != b {
		t.Fatal("tts session not served by the tts backend")
	}
	waiter := &session{waiting: true}
	if f.shard.Acquire(waiter, "tts") != nil {
		t.Fatal("a tts session got an stt connection")
	}
	for _, r := range f.shard.Sweep() { // reconcile sees the demand of each group
		if want := map[string]int{"stt": 0, "tts": 1}[r.Backend.Group()]; r.Waiting != want {
			t.Fatalf("sweep: %s has %d waiting, want %d", r.Backend.Group(), r.Waiting, want)
		}
	}
	f.enroll(a) // an stt connection does not serve the tts waiter
	if waiter.conn != nil {
		t.Fatal("waiter of one group granted another group's connection")
	}
	f.enroll(b)
	if waiter.conn == nil || waiter.conn.Backend() != b {
		t.Fatal("waiter not granted its group's new connection")
	}
	if f.shard.Available("asr") {
		t.Fatal("a group with no backend is available")
	}
}

func TestRemovedBackendSessionsEndAfterDrainTimeout(t *testing.T) {
	// Before the drain timeout the session keeps its connection; idle ones go.
	f := newFixture(t, Settings{URL: "ws://a:1/", DrainTimeout: time.Hour}, Settings{URL: "ws://b:1/"})
	a := f.pool.Backends()[0]
	f.enroll(a)
	f.enroll(a)
	s := &session{}
	f.shard.Acquire(s, DefaultGroup).Bind(s)
	if err := f.pool.SetBackends([]Settings{*f.pool.Backends()[1].Settings()}); err != nil {
		t.Fatal(err)
	}
	f.callback(func() { f.shard.Sweep() })
	f.flushCloses()
	if a.Leased.Load() != 1 || a.Idle.Load() != 0 || s.gone != 0 {
		t.Fatalf("within the drain timeout: leased %d idle %d, session told %d", a.Leased.Load(), a.Idle.Load(), s.gone)
	}
}

func TestRemovedBackendSessionsEndAfterTheTimeout(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", DrainTimeout: time.Nanosecond}, Settings{URL: "ws://b:1/"})
	a := f.pool.Backends()[0]
	f.enroll(a)
	f.enroll(a)
	s := &session{}
	c := f.shard.Acquire(s, DefaultGroup)
	c.Bind(s)
	st := *f.pool.Backends()[1].Settings()
	if err := f.pool.SetBackends([]Settings{st}); err != nil { // a removed
		t.Fatal(err)
	}
	f.callback(func() { f.shard.Sweep() })
	f.flushCloses()
	if a.Total.Load() != 0 || s.gone == 0 {
		t.Fatalf("after the drain timeout: total %d, session told %d", a.Total.Load(), s.gone)
	}
}

// TestRemovedBackendsArePruned is the regression test for the hardening
// issue's defect 10: every URL ever configured stayed in the pool, its
// slots and metric series, and every upgrade scanned them.
func TestRemovedBackendsArePruned(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://keep:1/"})
	keep, _ := Settings{URL: "ws://keep:1/"}.Normalize()
	for i := 0; i < 2000; i++ {
		st, _ := Settings{URL: fmt.Sprintf("ws://gone-%d:1/", i)}.Normalize()
		if err := f.pool.SetBackends([]Settings{keep, st}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.pool.Backends()); n != 2 {
		t.Fatalf("%d backends after 2000 changes with 2 live", n)
	}
	// A removed backend with a connection stays until it is gone.
	b := f.pool.Backends()[1]
	fc := f.enroll(b)
	if err := f.pool.SetBackends([]Settings{keep}); err != nil {
		t.Fatal(err)
	}
	if len(f.pool.Backends()) != 2 {
		t.Fatal("a removed backend with a connection was dropped")
	}
	if b.Reserve(0) {
		t.Fatal("a removed backend took a reservation")
	}
	f.shard.Sweep() // closes its idle connection
	f.flushCloses()
	_ = fc
	f.pool.Prune()
	if got := f.pool.Backends(); len(got) != 1 || got[0].Settings().URL != keep.URL {
		t.Fatalf("after its connection closed: %d backends", len(got))
	}
}

// TestLeastLeasedFollowsWeights: the default balancer gives each backend
// sessions in proportion to its weight whatever their length (most-idle
// spread connections, not load: under short sessions one backend took
// four times the others' leases), ties at random.
func TestLeastLeasedFollowsWeights(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Weight: 1, Max: 64, Policy: PolicyReuse},
		Settings{URL: "ws://b:1/", Weight: 2, Max: 64, Policy: PolicyReuse})
	a, b := f.pool.Backends()[0], f.pool.Backends()[1]
	for i := 0; i < 40; i++ {
		f.enroll(a)
		f.enroll(b)
	}
	// Leases that are never released (long sessions): after 30, the
	// weights split them 10 and 20.
	for i := 0; i < 30; i++ {
		if f.shard.Acquire(&session{}, DefaultGroup) == nil {
			t.Fatal("no connection")
		}
	}
	if a.Leased.Load() != 10 || b.Leased.Load() != 20 {
		t.Fatalf("leased %d and %d, want 10 and 20", a.Leased.Load(), b.Leased.Load())
	}
	// Short sessions, each released at once, on loads already in
	// proportion: ties, split at random.
	for i := 0; i < 300; i++ {
		c := f.shard.Acquire(&session{}, DefaultGroup)
		f.release(c, true)
	}
	la, lb := a.Leases.Load()-10, b.Leases.Load()-20
	if la+lb != 300 || la < 100 || la > 200 { // about half each: neither is busier
		t.Fatalf("short sessions split %d / %d", la, lb)
	}
	f.checkCounters()
}

func TestBalancerPolicies(t *testing.T) {
	for _, name := range BalancerNames {
		if _, err := ParseBalancer(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if b, err := ParseBalancer(""); err != nil || b != (LeastLeased{}) {
		t.Errorf("default: %v %v", b, err)
	}
	if _, err := ParseBalancer("fastest"); err == nil {
		t.Error("an unknown policy was accepted")
	}
}

func TestBackendURLs(t *testing.T) {
	for raw, want := range map[string]backendAddress{
		"ws://b:9000/x?y=1":     {addr: "b:9000", host: "b:9000", uri: "/x?y=1", serverName: "b"},
		"ws://b/":               {addr: "b:80", host: "b", uri: "/", serverName: "b"},
		"wss://b.example/speak": {addr: "b.example:443", host: "b.example", uri: "/speak", serverName: "b.example", tls: true},
		"wss://[::1]:8443":      {addr: "[::1]:8443", host: "[::1]:8443", uri: "/", serverName: "::1", tls: true},
	} {
		got, err := parseBackendURL(raw)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", raw, got, err, want)
		}
	}
}

// Without a max, a backend takes as many connections as sessions need:
// the README's -pool-size 100 must not cap sessions at 1,024 per backend.
func TestNoMaxByDefault(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Target: 100})
	b := f.pool.Backends()[0]
	if b.Settings().Max != 0 {
		t.Fatalf("default max %d, want 0 (none)", b.Settings().Max)
	}
	for i := 0; i < 5000; i++ {
		if !b.Reserve(0) {
			t.Fatalf("reservation %d refused without a max", i)
		}
	}
	if b.AtMax() || b.MaxReached.Load() != 0 {
		t.Fatal("at max without a max")
	}
	for i := 0; i < 5000; i++ {
		b.DialAborted(0)
	}
}

// TestLeasedConnPausedByTheRelayIsNotFailed: a leased connection the relay
// stopped reading (its client is behind) is neither pinged nor failed for
// a pong it cannot read: the backend is healthy, the stall timeout judges
// a peer that does not drain. Once read again, it is pinged as before.
func TestLeasedConnPausedByTheRelayIsNotFailed(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", PingInterval: time.Second, PongTimeout: time.Second})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	s := &session{paused: true}
	c := f.shard.Acquire(s, DefaultGroup)
	c.Bind(s)
	out := len(fc.out)
	advance := func(from, to int64) {
		for now := from; now <= to; now += 1e8 {
			f.callback(func() { f.loop.wheel.Advance(now) })
		}
	}
	advance(1e9, 20e9) // many ping intervals and pong timeouts
	if fc.closed || s.gone != 0 || len(fc.out) != out || b.Healthy() == false {
		t.Fatalf("paused by the relay: closed %v, session told %d, %d writes, healthy %v", fc.closed, s.gone, len(fc.out)-out, b.Healthy())
	}
	s.paused = false
	advance(20e9, 23e9)
	if len(fc.out) == out {
		t.Fatal("not pinged once the relay reads it again")
	}
}

// TestTakeForTransfer: what a shard hands to another loop. Never a wss://
// backend's connection (its TLS state is this loop's), never one with
// bytes still queued toward its backend (closing it here would cut a
// frame that the next session's frames would then continue), and one
// that speaks another subprotocol than the lane's is closed, not moved.
func TestTakeForTransfer(t *testing.T) {
	f := newFixture(t, Settings{URL: "wss://secure:1/"}, Settings{URL: "ws://plain:1/"})
	secure, plain := f.pool.Backends()[0], f.pool.Backends()[1]
	lane := Lane(DefaultGroup, "")
	f.enroll(secure)
	if c := f.shard.takeForTransfer(lane); c != nil {
		t.Fatalf("took a wss:// backend's connection (backend %d)", c.backend.ID)
	}
	fc := f.enroll(plain)
	fc.pending = 10
	if c := f.shard.takeForTransfer(lane); c != nil {
		t.Fatal("took a connection with bytes queued toward its backend")
	}
	if fc.closed || plain.Idle.Load() != 1 {
		t.Fatalf("the busy connection: closed %v, idle %d; want it kept idle", fc.closed, plain.Idle.Load())
	}
	fc.pending = 0
	fc.c.protocol = "old" // its backend agreed to another subprotocol on the newer one below
	good := f.enroll(plain)
	if c := f.shard.takeForTransfer(lane); c != good.c {
		t.Fatalf("the clean plain connection was not taken: %v", c)
	}
	if c := f.shard.takeForTransfer(lane); c != nil {
		t.Fatal("took a connection of another subprotocol")
	}
	if st := fc.c.state; st != StateClosing && st != StateClosed {
		t.Fatalf("a connection of another subprotocol was not closed: %v", st)
	}
}

// TestIdleConnHoldingAPartialFrameIsNotLeased: a backend's late frame whose
// header arrived while its connection was idle, but not yet a byte of its
// payload, is not given to the next session with the connection.
func TestIdleConnHoldingAPartialFrameIsNotLeased(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/"})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	fc.in = []byte{0x81, 0x05} // "a text frame of 5 bytes", the 5 still on the way
	f.callback(func() { fc.c.OnTraffic() })
	if c := f.shard.Acquire(&session{waiting: true}, DefaultGroup); c != nil {
		t.Fatal("leased a connection holding part of a late frame")
	}
	if st := fc.c.state; st != StateClosing && st != StateClosed {
		t.Fatalf("the connection is %v, want closed", st)
	}
}

// TestFailSendsItsCode: a connection the relay fails for its backend's
// protocol error tells the backend why, as one failed while idle does.
// (Counting the failure marked it broken, and a broken connection got no
// close frame.)
func TestFailSendsItsCode(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/"})
	fc := f.enroll(f.pool.Backends()[0])
	s := &session{}
	c := f.shard.Acquire(s, DefaultGroup)
	c.Bind(s)
	f.callback(func() { c.Fail(1007) })
	if len(fc.out) == 0 {
		t.Fatal("no close frame")
	}
	frame := fc.out[len(fc.out)-1]
	if len(frame) < 8 || frame[0] != 0x88 || frame[1]&0x7f < 2 {
		t.Fatalf("last write % x: want a masked close frame with a code", frame)
	}
	mask := frame[2:6]
	code := int(frame[6]^mask[0])<<8 | int(frame[7]^mask[1])
	if code != 1007 || !fc.closed {
		t.Fatalf("close code %d, closed %v; want 1007 and closed", code, fc.closed)
	}
}
