package pool

import (
	"fmt"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/internal/wheel"
)

// fakeConn stands in for a gnet connection: inbound bytes are what the
// test puts in, writes are recorded, Close runs OnClosed as gnet would
// (later, through the loop: here when the test calls flushCloses).
type fakeConn struct {
	gnet.Conn
	c       *Conn
	in      []byte
	out     [][]byte
	pending int // what OutboundBuffered reports: bytes the peer has not read
	closed  bool
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
func (f *fakeConn) Writev(bs [][]byte) (int, error) {
	var b []byte
	for _, x := range bs {
		b = append(b, x...)
	}
	f.out = append(f.out, b)
	return len(b), nil
}
func (f *fakeConn) Close() error { f.closed = true; return nil }

// session is a fake client session: it records what it is relayed.
type session struct {
	got     []string
	gone    ws.StatusCode
	waiting bool
	conn    *Conn
	onFrame func() // runs once, inside the first FromBackend
}

func (s *session) FromBackend(h ws.Header, frame []byte) {
	s.got = append(s.got, string(frame[len(frame)-int(h.Length):]))
	if f := s.onFrame; f != nil {
		s.onFrame = nil
		f()
	}
}
func (s *session) BackendGone(code ws.StatusCode, _ string) { s.gone = code; s.conn = nil }
func (s *session) StillWaiting() bool                       { return s.waiting }
func (s *session) Granted(c *Conn) bool {
	if !s.waiting {
		return false
	}
	s.waiting = false
	s.conn = c
	c.Bind(s)
	return true
}

func textFrame(p string) []byte { return append([]byte{0x81, byte(len(p))}, p...) }

type fixture struct {
	t     *testing.T
	pool  *Pool
	shard *Shard
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
	sh.Attach(nil, wheel.New(64, 1e6, 1e9))
	return &fixture{t: t, pool: p, shard: sh}
}

// enroll adds one connection to backend b as reconcile would.
func (f *fixture) enroll(b *Backend) *fakeConn {
	f.t.Helper()
	if !b.Reserve(0) {
		f.t.Fatal("reserve refused")
	}
	c := &Conn{shard: f.shard, slot: b.slots[0], backend: b, state: StateDialing}
	c.timer.Owner = c
	fc := &fakeConn{c: c}
	c.Opened(fc)
	f.conns = append(f.conns, fc)
	return fc
}

// flushCloses delivers gnet's OnClose for every connection closed so far.
func (f *fixture) flushCloses() {
	for _, fc := range f.conns {
		if fc.closed && fc.c.state != StateClosed {
			fc.c.OnClosed(nil)
		}
	}
}

func (f *fixture) checkCounters() {
	f.t.Helper()
	for _, b := range f.pool.Backends() {
		n := f.shard.Recount()[b]
		sum := b.Dialing.Load() + b.Idle.Load() + b.Leased.Load() + b.Releasing.Load() + b.Closing.Load()
		if int64(n.Idle) != b.Idle.Load() || int64(n.Leased) != b.Leased.Load() || int64(n.Closing) != b.Closing.Load() ||
			sum != b.Total.Load() || b.Total.Load() > int64(b.Settings().Max) {
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
	f.checkCounters()
	c := f.shard.Acquire(&session{}, DefaultGroup)
	f.shard.Release(c, false) // not clean: closed
	f.flushCloses()
	f.checkCounters()
	if !b.Reserve(0) {
		t.Fatal("room freed by a close was not reusable")
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
			c.Bind(s)
			f.shard.Release(c, true)
			f.flushCloses()
			if b.Idle.Load() != tc.idleAfter || b.Closed.Load() != tc.closedAfter {
				t.Fatalf("after release: idle %d closed %d", b.Idle.Load(), b.Closed.Load())
			}
			if tc.st.Policy == PolicyReset {
				if b.Releasing.Load() != 1 || len(fc.out) == 0 {
					t.Fatalf("reset: releasing %d, %d writes", b.Releasing.Load(), len(fc.out))
				}
				fc.in = textFrame("A")
				c.OnTraffic()
				if b.Idle.Load() != 1 || b.Releases.Load() != 1 {
					t.Fatalf("after ack: idle %d releases %d", b.Idle.Load(), b.Releases.Load())
				}
			}
			f.checkCounters()
		})
	}
}

// TestReleaseDuringTrafficKeepsFramesFromNextSession: two backend frames
// arrive in one read; relaying the first ends the session (its client
// write failed), which releases the connection while its frame loop is
// still running, and another session is waiting. The second frame belongs
// to the old session: it must not reach the new one.
func TestReleaseDuringTrafficKeepsFramesFromNextSession(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Max: 1, Policy: PolicyReuse})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	a := &session{}
	c := f.shard.Acquire(a, DefaultGroup)
	c.Bind(a)
	next := &session{waiting: true}
	if f.shard.Acquire(next, DefaultGroup) != nil {
		t.Fatal("second acquire got a connection with Max 1")
	}
	a.onFrame = func() { f.shard.Release(c, true) } // the session ends mid-batch
	fc.in = append(textFrame("A-1"), textFrame("A-2")...)
	c.OnTraffic()
	f.flushCloses()
	if len(next.got) != 0 {
		t.Fatalf("the next session received the old session's frames: %q", next.got)
	}
	if len(a.got) != 1 {
		t.Fatalf("old session got %q, want only the first frame", a.got)
	}
	f.checkCounters()
}

// TestCloseDuringTrafficStopsTheLoop: when a write during OnTraffic closes
// the connection (gnet runs OnClose at once), the loop stops and touches
// neither the buffer nor the socket again.
func TestCloseDuringTrafficStopsTheLoop(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/"})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	s := &session{}
	c := f.shard.Acquire(s, DefaultGroup)
	c.Bind(s)
	s.onFrame = func() { c.OnClosed(nil) } // as a synchronous write failure would
	ping := []byte{0x89, 0x00}
	fc.in = append(append(textFrame("x"), ping...), textFrame("y")...)
	writes := len(fc.out)
	c.OnTraffic()
	if len(fc.out) != writes {
		t.Fatalf("wrote %d frames after the connection closed", len(fc.out)-writes)
	}
	if len(s.got) != 1 || s.gone == 0 {
		t.Fatalf("session got %q, gone %d", s.got, s.gone)
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
		{"wss unsupported", Settings{URL: "wss://x:1/"}},
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
	c.Bind(s)
	b.Pause()
	if f.shard.Acquire(&session{waiting: true}, DefaultGroup) != nil {
		t.Fatal("a paused backend leased a connection")
	}
	f.shard.StopWaiting(DefaultGroup)
	f.shard.Release(c, true) // a paused backend keeps its connections
	if b.Idle.Load() != 2 || b.Closed.Load() != 0 {
		t.Fatalf("paused: idle %d closed %d", b.Idle.Load(), b.Closed.Load())
	}
	b.Resume()
	c = f.shard.Acquire(s, DefaultGroup)
	c.Bind(s)
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

func TestRoutingLookup(t *testing.T) {
	r := NewRouting(1, []Route{{Path: "/a/", Group: "a"}, {Path: "/a/b/", Group: "ab"}, {Path: "/x", Exact: true, Group: "x"}}, "")
	for uri, want := range map[string]string{"/a/1": "a", "/a/b/c?q": "ab", "/x": "x", "/x?y=1": "x"} {
		if got, ok := r.Lookup(uri); !ok || got != want {
			t.Errorf("%s -> %q %v, want %q", uri, got, ok, want)
		}
	}
	if _, ok := r.Lookup("/x/y"); ok {
		t.Error("an exact route matched a longer path, or an unrouted path found a group without a default")
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
	f.shard.Sweep()
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
	f.shard.Sweep()
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
