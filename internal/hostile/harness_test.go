package hostile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The bounds every scenario is held to.
const (
	// rssAllowance is how far the gateway's RSS may rise above its
	// baseline during a scenario. A scenario holds a handful of attacked
	// sessions and backend connections; what a correct gateway may buffer
	// for them is bounded by its limits: a 1 MiB message, a 4 MiB write
	// budget per direction per session, socket-sized reads, so under
	// 30 MiB of live data even with ten attacked sessions. The race
	// detector multiplies heap by roughly 5-10 (shadow memory) and the Go
	// heap grows to about twice its live size before a collection: 150 MiB
	// covers that with room, while the bugs the suite hunts grow the
	// process by hundreds of MB per second.
	rssAllowance = 150 << 20
	// countSlack is how many descriptors and goroutines above baseline are
	// tolerated once a scenario's peers are gone (a reconcile dial or an
	// admin request in flight, a worker that has not expired yet).
	countSlack = 8
	// attackDeadline bounds each scenario's attack: past it the attack is
	// stopped and the scenario fails as hung.
	attackDeadline = 20 * time.Second
	// settleWithin bounds the wait for descriptors and goroutines to come
	// back to baseline after the attack. The gateway hands each accepted
	// connection to its loop through gnet's Enroll, which runs on gnet's
	// shared worker pool; that pool keeps an idle worker for 10 s before
	// it expires, so after a flood of connections the count settles a
	// little over 10 s later.
	settleWithin = 15 * time.Second
	// roundTripWithin bounds one canary round trip. It is not a speed
	// requirement: on a loaded 2-core machine a race-built gateway answers
	// in milliseconds; a round trip that takes seconds means it stopped.
	roundTripWithin = 5 * time.Second
)

// honestTarget is the pool target of the honest backend the canary uses.
const honestTarget = 2

// harness runs one scenario: an honest backend and the canary, the
// scenario's evil peers, one gateway process, the monitor and the checks.
type harness struct {
	t      *testing.T
	honest *peerServer
	evil   []*peerServer
	gw     *gateway

	ctx    context.Context // the attack's: cancelled at the deadline or when a bound is passed
	cancel context.CancelFunc

	canary *canary
	base   snapshot
	bound  int64 // RSS bound in bytes
	peak   atomic.Int64
	breach atomic.Pointer[string] // why the monitor cut the attack short

	monitorDone chan struct{}
	watchdog    *time.Timer
	timedOut    atomic.Bool

	mu      sync.Mutex
	closers []func() // closed at the deadline and at finish: the attack's sockets
}

// snapshot is what is compared with the baseline.
type snapshot struct {
	rss        int64
	fds        int
	goroutines int
}

// newHarness starts the honest backend (tag echo).
func newHarness(t *testing.T) *harness {
	h := &harness{t: t, honest: startPeer(t, "honest", honest())}
	return h
}

// peer starts an evil backend whose connections behave as b.
func (h *harness) peer(name string, b behavior) *peerServer {
	p := startPeer(h.t, name, b)
	h.evil = append(h.evil, p)
	return p
}

// poolWait is a backend and how many upgraded connections it must have
// before the scenario starts (the gateway's pool filled).
type poolWait struct {
	peer *peerServer
	n    int64
}

// start runs the gateway, waits for its pools, starts the canary, takes the
// baseline and starts the monitor and the deadline.
func (h *harness) start(o gwOpts, waits ...poolWait) {
	t := h.t
	t.Helper()
	h.gw = startGateway(t, o)
	waits = append(waits, poolWait{h.honest, honestTarget})
	deadline := time.Now().Add(10 * time.Second)
	for _, w := range waits {
		for w.peer.upgraded.Load() < w.n {
			if time.Now().After(deadline) {
				t.Fatalf("backend %s: %d connections upgraded, want %d (the gateway's pool did not fill)\n%s",
					w.peer.name, w.peer.upgraded.Load(), w.n, h.gw.log.tail(2000))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	h.canary = startCanary(h.gw.addr)
	t.Cleanup(h.canary.stop)
	if err := h.canary.waitRoundTrips(3, 10*time.Second); err != nil {
		t.Fatalf("canary before the attack: %v\n%s", err, h.gw.log.tail(2000))
	}
	h.base = h.baseline()
	h.bound = h.base.rss + rssAllowance
	h.peak.Store(h.base.rss)
	t.Logf("baseline: RSS %s (bound %s), %d descriptors, %d goroutines",
		mib(h.base.rss), mib(h.bound), h.base.fds, h.base.goroutines)

	h.ctx, h.cancel = context.WithCancel(context.Background())
	t.Cleanup(h.cancel)
	h.monitorDone = make(chan struct{})
	go h.monitor()
	h.watchdog = time.AfterFunc(attackDeadline, func() {
		h.timedOut.Store(true)
		h.cancel()
		h.runClosers()
	})
	t.Cleanup(func() {
		h.watchdog.Stop()
		h.cancel()
		h.runClosers()
		<-h.monitorDone
	})
}

// baseline samples three times and keeps the largest counts.
func (h *harness) baseline() snapshot {
	var b snapshot
	for i := 0; i < 3; i++ {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		rss, err1 := h.gw.rss()
		fds, err2 := h.gw.fds()
		g, err3 := h.gw.goroutines()
		if err := errors.Join(err1, err2, err3); err != nil {
			h.t.Fatalf("baseline: %v", err)
		}
		b.rss, b.fds, b.goroutines = max(b.rss, rss), max(b.fds, fds), max(b.goroutines, g)
	}
	return b
}

// monitor samples RSS every 50 ms; past the bound, or if the process
// exits, it records why and stops the attack.
func (h *harness) monitor() {
	defer close(h.monitorDone)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.gw.done:
			h.setBreach("the gateway process exited during the attack (%s)", h.gw.exitHow)
			h.cancel()
			return
		case <-tick.C:
		}
		rss, err := h.gw.rss()
		if err != nil {
			continue // exiting: the next tick sees done
		}
		if rss > h.peak.Load() {
			h.peak.Store(rss)
		}
		if rss > h.bound {
			h.setBreach("RSS reached %s, over the bound %s (baseline %s + %s): attack stopped",
				mib(rss), mib(h.bound), mib(h.base.rss), mib(rssAllowance))
			h.cancel()
			return
		}
	}
}

func (h *harness) setBreach(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	h.breach.CompareAndSwap(nil, &s)
}

// onStop registers what ends part of the attack (a socket's Close): run at
// the deadline, so that blocked I/O returns, and at finish.
func (h *harness) onStop(f func()) {
	h.mu.Lock()
	h.closers = append(h.closers, f)
	h.mu.Unlock()
}

func (h *harness) runClosers() {
	h.mu.Lock()
	cs := h.closers
	h.closers = nil
	h.mu.Unlock()
	for _, c := range cs {
		c()
	}
}

// sleep waits d or until the attack is stopped; false if stopped.
func (h *harness) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-h.ctx.Done():
		return false
	}
}

// waitFor polls cond until it holds, within passes or the attack is
// stopped; it reports whether cond held.
func (h *harness) waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) || !h.sleep(10*time.Millisecond) {
			return false
		}
	}
	return true
}

// fire starts the attack of p's armed connections (see armed): new
// connections behave honestly from now on, and fire returns once every
// armed connection has started its attack.
func (h *harness) fire(p *peerServer, trigger chan struct{}) {
	h.t.Helper()
	p.set(honest())
	n := int(p.armedN.Load())
	close(trigger)
	if !h.waitFor(5*time.Second, func() bool { return len(p.attackedConns()) >= n }) {
		h.t.Errorf("backend %s: %d armed connections, %d attacked", p.name, n, len(p.attackedConns()))
	}
	h.t.Logf("backend %s: attack fired on %d idle connections", p.name, n)
}

// stopped reports whether the attack was cut short.
func (h *harness) stopped() bool { return h.ctx.Err() != nil }

// finish ends the attack and checks every outcome: the process alive and
// healthy, memory under the bound, the canary intact, a fresh session
// working, descriptors and goroutines back to baseline, no race report or
// panic, nothing a backend must not have received.
func (h *harness) finish() {
	t := h.t
	t.Helper()
	h.watchdog.Stop()
	h.cancel()
	h.runClosers()
	<-h.monitorDone
	for _, p := range h.evil {
		p.set(honest())
		p.dropAll()
	}
	if h.timedOut.Load() {
		t.Errorf("the scenario was still running after %v: stopped", attackDeadline)
	}
	if b := h.breach.Load(); b != nil {
		t.Errorf("%s", *b)
	}
	if !h.gw.alive() {
		t.Errorf("%s", h.gw.exitReport())
		h.canary.stop()
		return
	}
	if err := retry(3*time.Second, h.gw.healthz); err != nil {
		select {
		case <-h.gw.done: // it was dying: a race-built process takes a moment to exit
			t.Errorf("%s", h.gw.exitReport())
			h.canary.stop()
			return
		case <-time.After(2 * time.Second):
		}
		t.Errorf("the gateway is running but /healthz fails: %v", err)
	}
	rts, err := h.canary.finish()
	switch {
	case err != nil:
		t.Errorf("canary: %v (after %d good round trips)", err, rts)
	default:
		t.Logf("canary: %d round trips, all its own", rts)
	}
	if err := retry(4*time.Second, func() error {
		s, err := openSession(h.gw.addr, "/", "after", dialOpts{timeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer s.closeSession()
		return s.roundTrip("rt:after", roundTripWithin)
	}); err != nil {
		t.Errorf("the process runs but serves no new session after the attack (is its listener dead?): %v", err)
	}
	h.settle()
	if peak := h.peak.Load(); peak > h.bound {
		t.Errorf("peak RSS %s over the bound %s", mib(peak), mib(h.bound))
	} else {
		t.Logf("peak RSS %s (baseline %s, bound %s)", mib(peak), mib(h.base.rss), mib(h.bound))
	}
	for _, p := range append([]*peerServer{h.honest}, h.evil...) {
		for _, v := range p.takeViolations() {
			t.Errorf("backend %s: %s", p.name, v)
		}
	}
	h.checkLog()
}

// settle waits for descriptors and goroutines to come back to baseline.
func (h *harness) settle() {
	t := h.t
	t.Helper()
	var fds, gs int
	var err error
	deadline := time.Now().Add(settleWithin)
	for {
		fds, err = h.gw.fds()
		if err == nil {
			gs, err = h.gw.goroutines()
		}
		if err == nil && fds <= h.base.fds+countSlack && gs <= h.base.goroutines+countSlack {
			t.Logf("after the attack: %d descriptors (baseline %d), %d goroutines (baseline %d)", fds, h.base.fds, gs, h.base.goroutines)
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("measuring descriptors and goroutines: %v", err)
		return
	}
	if fds > h.base.fds+countSlack {
		t.Errorf("descriptors: %d, %v after the attack; baseline %d (+%d allowed)", fds, settleWithin, h.base.fds, countSlack)
	}
	if gs > h.base.goroutines+countSlack {
		t.Errorf("goroutines: %d, %v after the attack; baseline %d (+%d allowed)", gs, settleWithin, h.base.goroutines, countSlack)
	}
}

// checkLog fails on race reports and panics in the gateway's stderr.
func (h *harness) checkLog() {
	races, panics := h.gw.log.findings()
	if races > 0 {
		h.t.Errorf("the race detector reported %d data race(s) in the gateway:\n%s", races, h.gw.log.find("WARNING: DATA RACE", 3000))
	}
	for _, p := range panics {
		h.t.Errorf("gateway stderr: %s", p)
	}
}

// expectClosedByGateway requires every connection an attack was aimed at
// on p to have been ended by the gateway within `within` of the attack.
func (h *harness) expectClosedByGateway(p *peerServer, within time.Duration) {
	t := h.t
	t.Helper()
	conns := p.attackedConns()
	if len(conns) == 0 {
		t.Errorf("backend %s: no connection was attacked (the gateway never used it?)", p.name)
		return
	}
	var open []string
	for _, pc := range conns {
		select {
		case <-pc.gone:
		case <-time.After(time.Until(pc.attackedAt.Add(within))):
			open = append(open, pc.c.LocalAddr().String()+"<-"+pc.c.RemoteAddr().String())
		}
	}
	if len(open) > 0 {
		t.Errorf("backend %s: %d of %d attacked connections still open %v after the attack (the gateway must close them): %s",
			p.name, len(open), len(conns), within, strings.Join(open[:min(len(open), 5)], ", "))
	} else {
		t.Logf("backend %s: the gateway closed all %d attacked connections", p.name, len(conns))
	}
}

// expectClosedOrStalled requires every attacked connection on p to have
// been either ended by the gateway or stopped being read (a write made no
// progress for a second): the gateway must not keep swallowing.
func (h *harness) expectClosedOrStalled(p *peerServer) {
	t := h.t
	t.Helper()
	conns := p.attackedConns()
	if len(conns) == 0 {
		t.Errorf("backend %s: no connection was attacked (the gateway never used it?)", p.name)
		return
	}
	var closed, stalled, neither int
	for _, pc := range conns {
		switch {
		case pc.isGone():
			closed++
		case pc.stalled.Load():
			stalled++
		default:
			neither++
		}
	}
	t.Logf("backend %s: of %d flooding connections, %d closed by the gateway, %d paused (not read)", p.name, len(conns), closed, stalled)
	if neither > 0 {
		t.Errorf("backend %s: %d of %d flooding connections were neither closed nor paused by the gateway: it kept reading the flood",
			p.name, neither, len(conns))
	}
}

// canary is an honest session doing round trips through the gateway for
// the whole scenario.
type canary struct {
	addr  string
	stopc chan struct{}
	done  chan struct{}
	once  sync.Once

	rts atomic.Int64
	mu  sync.Mutex
	err error
}

func startCanary(addr string) *canary {
	c := &canary{addr: addr, stopc: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *canary) run() {
	defer close(c.done)
	s, err := openSession(c.addr, "/canary", "canary", dialOpts{})
	if err != nil {
		c.fail(fmt.Errorf("opening the session: %w", err))
		return
	}
	defer s.closeSession()
	c.rts.Add(1)
	for k := 0; ; k++ {
		select {
		case <-c.stopc:
			return
		case <-time.After(20 * time.Millisecond):
		}
		msg := fmt.Sprintf("rt:%d", k)
		if err := s.roundTrip(msg, roundTripWithin); err != nil {
			c.fail(fmt.Errorf("round trip %q: %w", msg, err))
			return
		}
		c.rts.Add(1)
	}
}

func (c *canary) fail(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

func (c *canary) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// waitRoundTrips waits for n round trips.
func (c *canary) waitRoundTrips(n int64, within time.Duration) error {
	deadline := time.Now().Add(within)
	for c.rts.Load() < n {
		if err := c.failure(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d round trips in %v", c.rts.Load(), within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func (c *canary) stop() {
	c.once.Do(func() { close(c.stopc) })
	<-c.done
}

// finish stops the canary after one more round trip and returns how many
// it did and its first failure.
func (c *canary) finish() (int64, error) {
	before := c.rts.Load()
	err := c.waitRoundTrips(before+1, roundTripWithin+time.Second)
	c.stop()
	if f := c.failure(); f != nil {
		err = f
	}
	return c.rts.Load(), err
}

// retry calls f until it succeeds or within passes.
func retry(within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// twoGroups is the usual configuration: the honest backend in group
// "honest" (the default route, where the canary lives) and the scenario's
// backends in group "evil", routed at /evil/. Each backend line is a YAML
// flow mapping body after the URL, e.g. "pool_target: 2, release_policy: reset".
func twoGroups(h *harness, evil map[*peerServer]string, extra string) string {
	var b strings.Builder
	b.WriteString(extra)
	b.WriteString("default_group: honest\ngroups:\n  - name: honest\n    backends:\n")
	fmt.Fprintf(&b, "      - {url: %q, pool_target: %d}\n", h.honest.url(), honestTarget)
	if len(evil) > 0 {
		b.WriteString("  - name: evil\n    backends:\n")
		for _, p := range h.evil {
			if line, ok := evil[p]; ok {
				fmt.Fprintf(&b, "      - {url: %q, %s}\n", p.url(), line)
			}
		}
		b.WriteString("routes:\n  - {path: /evil/, group: evil}\n")
	}
	return b.String()
}
