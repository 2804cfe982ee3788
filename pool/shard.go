package pool

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/wheel"
)

// Waiter is a session waiting for a connection in this shard. Loop-only.
type Waiter interface {
	// Granted hands the waiter a leased connection. It returns false if the
	// waiter stopped waiting; the shard then takes the connection back.
	Granted(c *Conn) bool
	// StillWaiting reports whether the waiter wants a connection.
	StillWaiting() bool
}

// Shard is one event loop's part of the pool: per backend a ring of idle
// connections, the sessions waiting for one, and scratch space for writes.
// Loop-only, except where a method says otherwise.
type Shard struct {
	pool  *Pool
	Index int // the server shard (event loop) it belongs to

	loop     gnet.EventLoop // set once by Attach, before any use off-loop
	wheel    *wheel.Wheel   // the server shard's timer wheel
	attached chan struct{}  // closed by Attach

	waiters   map[string][]Waiter // per backend group, FIFO; entries that stopped waiting are skipped
	waitingIn map[string]int      // live waiters per group (the queues also hold stale entries)
	Waiting   atomic.Int64        // sessions waiting, all groups (read by reconcile)

	signal atomic.Pointer[func()] // wakes this shard's reconcile worker
	rng    *rand.Rand             // balancer choices and lifetime jitter
	masks  *rand.ChaCha8          // masking keys: a fresh, unpredictable one per frame (RFC 6455 5.3)
	maskB  [4]byte                // scratch for masks
	// transfersAsked counts, per group, idle connections asked of other
	// shards for this shard's waiting sessions and not yet arrived or
	// refused, so a burst of waiters asks for no more than it needs.
	transfersAsked map[string]int

	hdr     [codec.MaxHeaderSize]byte
	iov     [2][]byte
	scratch []byte
}

func newShard(p *Pool, i int) *Shard {
	return &Shard{
		pool:           p,
		Index:          i,
		attached:       make(chan struct{}),
		waiters:        make(map[string][]Waiter),
		waitingIn:      make(map[string]int),
		rng:            rand.New(rand.NewPCG(rand.Uint64(), uint64(i))),
		masks:          newMaskSource(),
		scratch:        make([]byte, 0, 256),
		transfersAsked: make(map[string]int),
	}
}

// Attach binds the shard to its event loop and timer wheel. Loop-only:
// the server calls it when it creates its shard for that loop.
func (sh *Shard) Attach(loop gnet.EventLoop, w *wheel.Wheel) {
	sh.loop, sh.wheel = loop, w
	close(sh.attached)
}

// Attached is closed once the shard has its loop. Safe for concurrent use.
func (sh *Shard) Attached() <-chan struct{} { return sh.attached }

// Loop is the shard's event loop. Safe for concurrent use after Attached.
func (sh *Shard) Loop() gnet.EventLoop { return sh.loop }

// SetSignal installs the function that wakes this shard's reconcile
// worker. Safe for concurrent use.
func (sh *Shard) SetSignal(fn func()) { sh.signal.Store(&fn) }

// Signal wakes the reconcile worker (a non-blocking, coalescing send).
// Safe for concurrent use.
func (sh *Shard) Signal() {
	if fn := sh.signal.Load(); fn != nil {
		(*fn)()
	}
}

// ErrNotEnrolled reports that gnet did not take a dialed connection.
var ErrNotEnrolled = errors.New("pool: connection not enrolled")

// Enroll hands a dialed, upgraded connection (reserved with b.Reserve for
// this shard) to the shard's loop, where it becomes idle. It waits for the
// loop, so it must never be called on a loop. On error the reservation is
// given back. Safe for concurrent use.
func (sh *Shard) Enroll(ctx context.Context, b *Backend, nc net.Conn) error {
	c := &Conn{shard: sh, slot: b.slots[sh.Index], backend: b, state: StateDialing}
	return sh.enroll(ctx, c, nc)
}

func (sh *Shard) enroll(ctx context.Context, c *Conn, nc net.Conn) error {
	b := c.backend
	c.timer.Owner = c
	res, err := sh.loop.Enroll(gnet.NewContext(ctx, c), nc)
	if err != nil {
		_ = nc.Close()
		b.DialAborted(sh.Index)
		return fmt.Errorf("%w: %v", ErrNotEnrolled, err)
	}
	select {
	case r := <-res:
		if r.Err != nil || !c.enrolled.Load() {
			// gnet closed its copy; ours is closed by gnet's enroll too.
			b.DialAborted(sh.Index)
			return fmt.Errorf("%w: %v", ErrNotEnrolled, r.Err)
		}
		return nil
	case <-ctx.Done():
		// The result normally still arrives (the loop runs the enroll task
		// soon); wait for it so the counters stay exact. If the engine
		// stopped first, gnet never answers: give the reservation back.
		select {
		case r := <-res:
			if r.Err == nil && c.enrolled.Load() {
				return nil
			}
		case <-time.After(5 * time.Second):
		}
		b.DialAborted(sh.Index)
		return fmt.Errorf("%w: %v", ErrNotEnrolled, ctx.Err())
	}
}

// Acquire leases an idle connection from the best backend of group in
// this shard (see pick). With none idle here it queues w, which is handed
// a connection by Granted as soon as one of the group is idle here; it
// asks other shards for an idle connection of theirs (see askTransfers)
// and signals reconcile. It returns nil then.
func (sh *Shard) Acquire(w Waiter, group string) *Conn {
	if c := sh.leaseBest(group); c != nil {
		return c
	}
	sh.waiters[group] = append(sh.waiters[group], w)
	sh.waitingIn[group]++
	sh.Waiting.Add(1)
	sh.askTransfers(group)
	sh.Signal()
	return nil
}

// StopWaiting is called by a waiter of group that gives up (timeout,
// client gone). Its queue entry is skipped later; once stale entries
// outnumber live ones the queue is compacted, so it stays bounded by the
// live waiters.
func (sh *Shard) StopWaiting(group string) {
	sh.Waiting.Add(-1)
	sh.waitingIn[group]--
	live := sh.waitingIn[group]
	q := sh.waiters[group]
	if len(q) > 2*live+16 {
		kept := q[:0]
		for _, w := range q {
			if w.StillWaiting() {
				kept = append(kept, w)
			}
		}
		clear(q[len(kept):])
		sh.waiters[group] = kept
	}
}

// Available reports whether a new session of group could be served now or
// soon: some backend of the group that takes leases has an idle
// connection in any shard (a session may take one from another shard), or
// is healthy (dials succeed). With none, the server answers 503 before
// the upgrade.
func (sh *Shard) Available(group string) bool {
	for _, b := range sh.pool.Backends() {
		if b.Group() == group && leasable(b) && (b.Healthy() || b.Idle.Load() > 0) {
			return true
		}
	}
	return false
}

func leasable(b *Backend) bool { return b.TakesLeases() }

// leaseBest leases from the backend pick chooses, or returns nil.
func (sh *Shard) leaseBest(group string) *Conn {
	s := sh.pick(group)
	if s == nil {
		return nil
	}
	c := s.popIdle()
	c.setState(StateLeased)
	s.backend.Leases.Add(1)
	s.Leases.Add(1)
	sh.wheel.Schedule(&c.timer, c.lastRead+int64(c.settings().PingInterval))
	return c
}

// pick is the balancer. Among the group's backends that take leases and
// have an idle connection in this shard: with equal weights, the one with
// the most idle connections, ties broken at random; with different
// weights, one at random in proportion to its weight, so new sessions
// split as the weights say. A backend whose dials fail (unhealthy) is
// skipped while a healthy one has an idle connection; its idle
// connections are still used when nothing else is left, since each is
// checked by its own pings.
func (sh *Shard) pick(group string) *slot {
	backends := sh.pool.Backends()
	healthyOnly := false
	for _, b := range backends {
		if sh.candidate(b, group, false) && b.Healthy() {
			healthyOnly = true
			break
		}
	}
	var (
		best          *slot
		ties, sum     int
		weighted      *slot
		firstWeight   = -1
		uniformWeight = true
	)
	for _, b := range backends {
		if !sh.candidate(b, group, healthyOnly) {
			continue
		}
		s := b.slots[sh.Index]
		w := b.Settings().Weight
		if firstWeight < 0 {
			firstWeight = w
		} else if w != firstWeight {
			uniformWeight = false
		}
		// Weighted reservoir sampling: chosen in proportion to weight.
		sum += w
		if sh.rng.IntN(sum) < w {
			weighted = s
		}
		// Most idle, uniform reservoir sampling among ties.
		switch {
		case best == nil || s.idleN > best.idleN:
			best, ties = s, 1
		case s.idleN == best.idleN:
			ties++
			if sh.rng.IntN(ties) == 0 {
				best = s
			}
		}
	}
	if uniformWeight {
		return best
	}
	return weighted
}

// candidate reports whether b can serve a lease for group in this shard now.
func (sh *Shard) candidate(b *Backend, group string, healthyOnly bool) bool {
	return b.Group() == group && b.slots[sh.Index].idleN > 0 && leasable(b) && (!healthyOnly || b.Healthy())
}

// makeIdle puts c in its ring and hands it to a waiting session if any.
func (sh *Shard) makeIdle(c *Conn, now int64) {
	c.setState(StateIdle)
	c.idleSince = now
	c.slot.pushIdle(c)
	sh.wheel.Schedule(&c.timer, c.lastRead+int64(c.settings().PingInterval))
	sh.grantWaiters(c.backend.Group())
}

// grantWaiters leases idle connections of group to its waiting sessions,
// oldest first.
func (sh *Shard) grantWaiters(group string) {
	for len(sh.waiters[group]) > 0 {
		c := sh.leaseBest(group)
		if c == nil {
			return
		}
		q := sh.waiters[group]
		w := q[0]
		q[0] = nil
		if len(q) == 1 {
			delete(sh.waiters, group) // let a long queue's array go
		} else {
			sh.waiters[group] = q[1:]
		}
		if !w.Granted(c) {
			sh.unlease(c)
		}
	}
}

// unlease puts back a connection that was leased but never used.
func (sh *Shard) unlease(c *Conn) {
	c.slot.backend.Leases.Add(-1)
	c.slot.Leases.Add(-1)
	c.setState(StateIdle)
	c.slot.pushIdle(c)
}

// Release ends c's lease. clean says the session ended on a message
// boundary in the client-to-backend direction; the connection is reused
// (by its policy) only if both directions are clean, it is healthy, not
// past its lifetime, and its backend still takes leases. A release during
// c's own OnTraffic is finished when that returns.
func (sh *Shard) Release(c *Conn, clean bool) {
	if c.state != StateLeased || c.flags&flagReleasePending != 0 {
		return
	}
	c.peer = nil
	if c.flags&flagInTraffic != 0 {
		c.flags |= flagReleasePending
		if clean {
			c.flags |= flagPendingClean
		}
		return
	}
	sh.release(c, clean)
}

func (sh *Shard) release(c *Conn, clean bool) {
	st := c.settings()
	now := sh.wheel.Now()
	switch {
	case !clean || !c.reusable(now) || st.Policy == PolicyClose || !c.backend.KeepsConnections(),
		st.Policy == PolicyReuse && c.gc.InboundBuffered() > 0: // part of a frame, or frames, of the old session
		c.close()
	case st.Policy == PolicyReset:
		c.startReset(now)
	default:
		c.backend.Releases.Add(1)
		c.slot.Releases.Add(1)
		sh.makeIdle(c, now)
	}
	sh.Signal()
}

// finishPendingRelease completes a release made during c's OnTraffic.
// Frames of the old session may still be buffered: with PolicyReset they
// are read (and ignored) while waiting for the ack; otherwise their
// presence makes the connection unsafe to reuse.
func (c *Conn) finishPendingRelease() {
	clean := c.flags&flagPendingClean != 0
	c.flags &^= flagReleasePending | flagPendingClean
	if c.gc.InboundBuffered() > 0 && c.settings().Policy != PolicyReset {
		clean = false
	}
	c.shard.release(c, clean)
}

// newMaskSource seeds a ChaCha8 stream from the operating system's
// entropy: masks a backend (or anything between us and it) sees tell it
// nothing about the next ones.
func newMaskSource() *rand.ChaCha8 {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux
	return rand.NewChaCha8(seed)
}

// maskKey returns a fresh masking key: the gateway is the client on the
// backend link and picks its own key for every frame, never the client's.
func (sh *Shard) maskKey() (m [4]byte) {
	_, _ = sh.masks.Read(sh.maskB[:])
	return sh.maskB
}

// writeMasked writes a frame to a backend connection as header and
// payload in one writev, masked with a fresh key. payload is masked in
// place and left masked; h's own mask (a client's) is never used.
func (sh *Shard) writeMasked(gc gnet.Conn, h ws.Header, payload []byte) error {
	h.Masked = true
	h.Mask = sh.maskKey()
	h.Length = int64(len(payload))
	codec.Mask(payload, h.Mask, 0)
	n := codec.PutHeader(sh.hdr[:], h)
	sh.iov[0], sh.iov[1] = sh.hdr[:n], payload
	_, err := gc.Writev(sh.iov[:])
	sh.iov[0], sh.iov[1] = nil, nil
	return err
}

// writeOwn writes a frame the proxy originates (pong, session start,
// reset, close): the payload is copied before masking.
func (sh *Shard) writeOwn(gc gnet.Conn, op ws.OpCode, payload []byte) error {
	sh.scratch = append(sh.scratch[:0], payload...)
	return sh.writeMasked(gc, ws.Header{Fin: true, OpCode: op}, sh.scratch)
}

// preciseNow is a fine monotonic clock in ns (the shard clock, now(), is
// the time of the last tick): for the reset's quiet period.
func (sh *Shard) preciseNow() int64 { return int64(time.Since(sh.pool.epoch)) }

// SweepResult is what a sweep saw of one backend in one shard.
type SweepResult struct {
	Backend   *Backend
	FreshIdle int // idle connections not past their lifetime
	// Dialing is the shard's dials in flight, read on the loop together
	// with FreshIdle: a dial that completes becomes idle on the loop, so
	// the two never count it twice or not at all.
	Dialing int
	Closed  int // connections this sweep closed
	Waiting int // sessions in this shard waiting for the backend's group
}

// Sweep is reconcile's loop-side step: it closes idle connections that
// should go (backend removed or draining; past their lifetime once enough
// fresh ones stand ready; above target and unused for IdleTimeout; above
// Max after Max was lowered) and reports what is left. Loop-only.
func (sh *Shard) Sweep() []SweepResult {
	now := sh.wheel.Now()
	backends := sh.pool.Backends()
	out := make([]SweepResult, 0, len(backends))
	for _, b := range backends {
		s := b.slots[sh.Index]
		st := b.Settings()
		r := SweepResult{Backend: b}
		if !b.KeepsConnections() {
			r.Closed = s.closeIdle(func(*Conn) bool { return true })
			// Sessions still on a backend that left the configuration end
			// (1001) once its drain timeout has passed.
			if since := b.leavingSince.Load(); since != 0 && time.Since(time.Unix(0, since)) >= st.DrainTimeout {
				for c := range s.conns {
					if c.state == StateLeased {
						c.closeWith(codec.CloseGoingAway)
						r.Closed++
					}
				}
			}
			out = append(out, r)
			continue
		}
		target := share(st.Target, len(sh.pool.shards), sh.Index)
		expired := 0
		s.eachIdle(func(c *Conn) {
			if now >= c.expires {
				expired++
			}
		})
		fresh := s.idleN - expired
		// Retire expired connections only once replacements stand ready
		// (or when over Max, where no replacement can be dialed anyway).
		over := b.Total.Load() - b.Closing.Load() - int64(st.Max)
		if expired > 0 && (fresh >= target || over > 0) {
			r.Closed += s.closeIdle(func(c *Conn) bool { return now >= c.expires })
		}
		// Above target: close what has sat unused for IdleTimeout.
		surplus := fresh - target
		r.Closed += s.closeIdle(func(c *Conn) bool {
			if surplus > 0 && now < c.expires && now-c.idleSince >= int64(st.IdleTimeout) {
				surplus--
				return true
			}
			return false
		})
		// Above Max (it was lowered): close idle ones toward it. Every shard
		// sweeps on its own loop at the same time, so each closes only its
		// share of the excess (connections already closing do not count);
		// the next sweeps close what is left.
		if over = b.Total.Load() - b.Closing.Load() - int64(st.Max); over > 0 {
			mine := (over + int64(len(sh.pool.shards)) - 1) / int64(len(sh.pool.shards))
			r.Closed += s.closeIdle(func(*Conn) bool {
				if mine > 0 {
					mine--
					return true
				}
				return false
			})
		}
		s.eachIdle(func(c *Conn) {
			if now < c.expires {
				r.FreshIdle++
			}
		})
		r.Dialing = int(s.Dialing.Load())
		out = append(out, r)
	}
	// A configuration change (a backend moved to another group, re-enabled,
	// resumed) can make idle connections usable for sessions already
	// waiting: hand them over now rather than at the next release.
	for group, q := range sh.waiters {
		if len(q) > 0 {
			sh.grantWaiters(group)
		}
	}
	// Sessions still waiting may be served by another shard's idle
	// connections (a request refused earlier is asked again here).
	for group, n := range sh.waitingIn {
		if n > 0 {
			sh.askTransfers(group)
		}
	}
	waiting := make(map[string]int, len(sh.waiters))
	for group, q := range sh.waiters {
		for _, w := range q {
			if w.StillWaiting() {
				waiting[group]++
			}
		}
	}
	for i := range out {
		out[i].Waiting = waiting[out[i].Backend.Group()]
	}
	return out
}

// ShardCount is a recount of one backend's connections in one shard,
// from the connections themselves, to check the counters against.
type ShardCount struct {
	Idle, Leased, Releasing, Closing int
}

// Recount walks every connection of every backend in this shard. Loop-only.
func (sh *Shard) Recount() map[*Backend]ShardCount {
	out := make(map[*Backend]ShardCount)
	for _, b := range sh.pool.Backends() {
		s := b.slots[sh.Index]
		var n ShardCount
		for c := range s.conns {
			switch c.state {
			case StateIdle:
				n.Idle++
			case StateLeased:
				n.Leased++
			case StateReleasing:
				n.Releasing++
			case StateClosing:
				n.Closing++
			}
		}
		ring := 0
		s.eachIdle(func(*Conn) { ring++ })
		if ring != n.Idle {
			n.Idle = -ring // a ring out of step with states shows as a mismatch
		}
		out[b] = n
	}
	return out
}

// CloseAll closes every connection of this shard with close 1001 (server
// stop). Loop-only.
func (sh *Shard) CloseAll() {
	for _, b := range sh.pool.Backends() {
		for c := range b.slots[sh.Index].conns {
			c.closeWith(codec.CloseGoingAway)
		}
	}
}

// now is the shard's coarse clock in ns.
func (sh *Shard) now() int64 { return sh.wheel.Now() }

// clockJitter returns d scaled by a random factor in [1-f, 1+f].
func (sh *Shard) clockJitter(d time.Duration, f float64) int64 {
	return int64(float64(d) * (1 - f + 2*f*sh.rng.Float64()))
}
