package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/framewrite"
	"github.com/wsgate/wsgate/internal/looptls"
	"github.com/wsgate/wsgate/internal/wheel"
)

// Loop is what a ShardPool needs of its event loop's shard (the server's
// Shard provides it): its loop, timer wheel and frame writer, and work
// deferred to the end of the current callback.
type Loop interface {
	Loop() gnet.EventLoop
	Wheel() *wheel.Wheel
	Writer() *framewrite.Writer
	Defer(fn func())
	Run(fn func()) error
}

// Waiter is a session waiting for a connection in this shard. Loop-only.
type Waiter interface {
	// Granted hands the waiter a leased connection. It returns false if the
	// waiter stopped waiting; the shard then takes the connection back.
	Granted(c *Conn) bool
	// StillWaiting reports whether the waiter wants a connection.
	StillWaiting() bool
}

// ShardPool is the pool's part in one shard (event loop): per backend a
// ring of idle connections, the sessions waiting for one, the requests
// for connections of other shards. Loop-only, except where a method says
// otherwise.
type ShardPool struct {
	pool  *Pool
	Index int // the shard (event loop) it belongs to

	loop     Loop          // set once by Attach, before any use off-loop
	attached chan struct{} // closed by Attach

	waiters   map[string][]Waiter // per lane, FIFO; entries that stopped waiting are skipped
	waitingIn map[string]int      // live waiters per lane (the queues also hold stale entries)
	Waiting   atomic.Int64        // sessions waiting, all lanes (read by reconcile)

	// transfersAsked counts, per lane, idle connections asked of other
	// shards for this shard's waiting sessions and not yet arrived or
	// refused, so a burst of waiters asks for no more than it needs.
	transfersAsked map[string]int

	signal atomic.Pointer[func()] // wakes this shard's reconcile worker
	rng    *rand.Rand             // balancer ties
	cands  []*shardBackend        // the balancer's scratch
}

func newShardPool(p *Pool, i int) *ShardPool {
	return &ShardPool{
		pool:           p,
		Index:          i,
		attached:       make(chan struct{}),
		waiters:        make(map[string][]Waiter),
		waitingIn:      make(map[string]int),
		transfersAsked: make(map[string]int),
		rng:            rand.New(rand.NewPCG(rand.Uint64(), uint64(i))),
	}
}

// Attach binds the shard pool to its loop's shard. Loop-only: the gateway
// calls it when the server creates the shard for that loop.
func (sh *ShardPool) Attach(loop Loop) {
	sh.loop = loop
	close(sh.attached)
}

// Attached is closed once the shard pool has its loop. Safe for
// concurrent use.
func (sh *ShardPool) Attached() <-chan struct{} { return sh.attached }

// Run runs fn on the shard's loop as one of its callbacks. Safe for
// concurrent use after Attached; it does not wait.
func (sh *ShardPool) Run(fn func()) error { return sh.loop.Run(fn) }

// SetSignal installs the function that wakes this shard's reconcile
// worker. Safe for concurrent use.
func (sh *ShardPool) SetSignal(fn func()) { sh.signal.Store(&fn) }

// Signal wakes the reconcile worker (a non-blocking, coalescing send).
// Safe for concurrent use.
func (sh *ShardPool) Signal() {
	if fn := sh.signal.Load(); fn != nil {
		(*fn)()
	}
}

// now is the shard's coarse clock in ns.
func (sh *ShardPool) now() int64 { return sh.loop.Wheel().Now() }

// preciseNow is a fine monotonic clock in ns (the shard clock moves a
// tick at a time): for the reset's quiet period.
func (sh *ShardPool) preciseNow() int64 { return int64(time.Since(sh.pool.epoch)) }

// ErrNotEnrolled reports that gnet did not take a dialed connection.
var ErrNotEnrolled = errors.New("pool: connection not enrolled")

// Enroll hands a dialed, upgraded connection (reserved with b.Reserve for
// this shard) to the shard's loop, where it becomes idle; secured is its
// TLS state for a wss:// backend (nil for ws://), protocol the
// subprotocol the backend agreed to ("" for none). It waits for the loop,
// so it must never be called on a loop. On error the reservation is given
// back. Safe for concurrent use.
func (sh *ShardPool) Enroll(ctx context.Context, b *Backend, nc net.Conn, secured *looptls.Handshaken, protocol string) error {
	c := sh.newConn(b)
	c.secured = secured
	c.protocol = protocol
	return sh.enroll(ctx, c, nc)
}

func (sh *ShardPool) newConn(b *Backend) *Conn {
	c := &Conn{shard: sh, local: b.shards[sh.Index], backend: b, state: StateDialing}
	c.reader = codec.NewFrameReader(codec.RoleClient, sh.pool.cfg.MaxFrameBytes, sh.pool.cfg.MaxMessageBytes)
	c.timer.Owner = c
	return c
}

func (sh *ShardPool) enroll(ctx context.Context, c *Conn, nc net.Conn) error {
	b := c.backend
	res, err := sh.loop.Loop().Enroll(gnet.NewContext(ctx, c), nc)
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

// Acquire leases an idle connection of lane in this shard, from the
// backend the group's balancer picks. With none idle here it queues w,
// which is granted a connection as soon as one of the lane is idle here,
// asks other shards for an idle connection of theirs (transfer.go) and
// signals reconcile; it returns nil then.
func (sh *ShardPool) Acquire(w Waiter, lane string) *Conn {
	if c := sh.leaseBest(lane); c != nil {
		return c
	}
	sh.waiters[lane] = append(sh.waiters[lane], w)
	sh.waitingIn[lane]++
	sh.Waiting.Add(1)
	sh.askTransfers(lane)
	sh.Signal()
	return nil
}

// StopWaiting is called by a waiter of lane that gives up (timeout,
// client gone). Its queue entry is skipped later; once stale entries
// outnumber live ones the queue is compacted, so it stays bounded by the
// live waiters.
func (sh *ShardPool) StopWaiting(lane string) {
	sh.Waiting.Add(-1)
	sh.waitingIn[lane]--
	live := sh.waitingIn[lane]
	q := sh.waiters[lane]
	if len(q) > 2*live+16 {
		kept := q[:0]
		for _, w := range q {
			if w.StillWaiting() {
				kept = append(kept, w)
			}
		}
		clear(q[len(kept):])
		sh.waiters[lane] = kept
	}
}

// Available reports whether a new session of group could be served now or
// soon: some backend of the group that takes leases has an idle
// connection in any shard (a session may take one from another shard), or
// is healthy (dials succeed). With none, the server answers 503 before
// the upgrade.
func (sh *ShardPool) Available(group string) bool {
	for _, b := range sh.pool.Backends() {
		if b.Group() == group && b.TakesLeases() && (b.Healthy() || b.Idle.Load() > 0) {
			return true
		}
	}
	return false
}

// Speaks reports whether a backend of group that serves sessions agreed
// to protocol, or has not been asked yet (no connection so far). Safe for
// concurrent use.
func (p *Pool) Speaks(group, protocol string) bool {
	for _, b := range p.Backends() {
		if b.Group() != group || !b.TakesLeases() {
			continue
		}
		if agreed := b.protocol.Load(); agreed == nil || *agreed == protocol {
			return true
		}
	}
	return false
}

// speaks reports whether c's backend agreed to lane's subprotocol on it.
// One that did not (its backend agreed to another since: its newer
// connections did) serves nobody now.
func (c *Conn) speaks(lane string) bool {
	_, protocol := splitLane(lane)
	return c.protocol == protocol
}

// leaseBest leases from the backend the balancer picks, or returns nil.
func (sh *ShardPool) leaseBest(lane string) *Conn {
	for {
		s := sh.pick(lane, false)
		if s == nil {
			return nil
		}
		c := s.popIdle()
		// One that speaks another subprotocol serves nobody now. Bytes
		// an idle connection holds are the start of a frame not whole
		// yet: a ping, or a late frame of the last session, which the
		// next one must never get. Either is closed.
		if !c.speaks(lane) || c.gc.InboundBuffered() > 0 {
			c.close()
			continue
		}
		c.setState(StateLeased)
		c.need = 0 // the relay reads its bytes now; a wait for a whole frame ends with the idle time
		s.backend.Leases.Add(1)
		s.Leases.Add(1)
		sh.loop.Wheel().Schedule(&c.timer, c.lastRead+int64(c.settings().PingInterval))
		return c
	}
}

// makeIdle puts c in its ring; waiting sessions of its lane are granted
// connections after the current callback (granting writes to other
// connections).
func (sh *ShardPool) makeIdle(c *Conn, now int64) {
	c.setState(StateIdle)
	c.idleSince = now
	c.local.pushIdle(c)
	sh.loop.Wheel().Schedule(&c.timer, c.lastRead+int64(c.settings().PingInterval))
	if lane := c.lane(); sh.waitingIn[lane] > 0 {
		sh.loop.Defer(func() { sh.grantWaiters(lane) })
	}
}

// grantWaiters leases idle connections of lane to its waiting sessions,
// oldest first.
func (sh *ShardPool) grantWaiters(lane string) {
	for len(sh.waiters[lane]) > 0 {
		c := sh.leaseBest(lane)
		if c == nil {
			return
		}
		q := sh.waiters[lane]
		w := q[0]
		q[0] = nil
		if len(q) == 1 {
			delete(sh.waiters, lane) // let a long queue's array go
		} else {
			sh.waiters[lane] = q[1:]
		}
		if !w.Granted(c) {
			sh.unlease(c)
		}
	}
}

// unlease puts back a connection that was leased but never used.
func (sh *ShardPool) unlease(c *Conn) {
	c.backend.Leases.Add(-1)
	c.local.Leases.Add(-1)
	c.setState(StateIdle)
	c.local.pushIdle(c)
}

// Release ends c's lease: its traffic comes back to the pool at once (so
// nothing more reaches the session), and what happens to it is decided
// after the current callback. clean says the session ended on a message
// boundary toward the backend; the connection is reused (by its policy)
// only if the backend's side is clean too, it is healthy, not past its
// lifetime, and its backend still takes leases.
func (sh *ShardPool) Release(c *Conn, clean bool) {
	if c.state != StateLeased {
		return
	}
	c.unbind()
	sh.loop.Defer(func() { sh.release(c, clean) })
}

func (sh *ShardPool) release(c *Conn, clean bool) {
	if c.state != StateLeased {
		return // closed meanwhile
	}
	st := c.settings()
	now := sh.now()
	switch {
	case !clean || !c.reusable(now) || st.Policy == PolicyClose || !c.backend.KeepsConnections(),
		st.Policy == PolicyReuse && c.gc.InboundBuffered() > 0: // part of a frame, or frames, of the old session
		c.close()
	case st.Policy == PolicyReset:
		c.startReset(now)
	default:
		c.backend.Releases.Add(1)
		c.local.Releases.Add(1)
		sh.makeIdle(c, now)
	}
	sh.Signal()
}

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
// should go (see sweepBackend), hands idle connections to sessions that
// wait (after a configuration change), asks other shards for
// connections, and reports what is left. Loop-only.
func (sh *ShardPool) Sweep() []SweepResult {
	now := sh.now()
	backends := sh.pool.Backends()
	out := make([]SweepResult, 0, len(backends))
	for _, b := range backends {
		out = append(out, sh.sweepBackend(b, now))
	}
	// A configuration change (a backend moved to another group, re-enabled,
	// resumed) can make idle connections usable for sessions already
	// waiting: hand them over now rather than at the next release; and
	// ask other shards again for the rest.
	for lane, n := range sh.waitingIn {
		if n > 0 {
			sh.grantWaiters(lane)
			sh.askTransfers(lane)
		}
	}
	for i := range out {
		for lane, n := range sh.waitingIn {
			if group, _ := splitLane(lane); group == out[i].Backend.Group() {
				out[i].Waiting += n
			}
		}
	}
	return out
}

// sweepBackend closes b's idle connections in this shard that should go:
// all of them when b left the configuration or drains (and, past its drain
// timeout, the sessions still on it); past their lifetime once enough
// fresh ones stand ready; above target and unused for IdleTimeout; above
// Max after Max was lowered.
func (sh *ShardPool) sweepBackend(b *Backend, now int64) SweepResult {
	s := b.shards[sh.Index]
	st := b.Settings()
	r := SweepResult{Backend: b}
	if !b.KeepsConnections() {
		r.Closed = s.closeIdle(func(*Conn) bool { return true })
		if since := b.leavingSince.Load(); since != 0 && time.Since(time.Unix(0, since)) >= st.DrainTimeout {
			for c := range s.conns {
				if c.state == StateLeased {
					c.abortLease(codec.CloseGoingAway, "backend removed from the configuration")
					c.closeWith(codec.CloseGoingAway)
					r.Closed++
				}
			}
		}
		r.Dialing = int(s.Dialing.Load())
		return r
	}
	target := Share(st.Target, len(sh.pool.shards), sh.Index)
	expired := 0
	s.eachIdle(func(c *Conn) {
		if now >= c.expires {
			expired++
		}
	})
	fresh := s.idleN - expired
	// Retire expired connections only once replacements stand ready (or
	// when over Max, where no replacement can be dialed anyway).
	over := int64(0)
	if st.Max > 0 {
		over = b.Total.Load() - b.Closing.Load() - int64(st.Max)
	}
	if expired > 0 && (fresh >= target || over > 0) {
		r.Closed += s.closeIdle(func(c *Conn) bool { return now >= c.expires })
	}
	surplus := fresh - target
	r.Closed += s.closeIdle(func(c *Conn) bool {
		if surplus > 0 && now < c.expires && now-c.idleSince >= int64(st.IdleTimeout) {
			surplus--
			return true
		}
		return false
	})
	// Above Max (it was lowered): every shard sweeps at the same time, so
	// each closes only its share of the excess (connections already
	// closing do not count); the next sweeps close what is left.
	if over = b.Total.Load() - b.Closing.Load() - int64(st.Max); st.Max > 0 && over > 0 {
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
	return r
}

// ShardCount is a recount of one backend's connections in one shard,
// from the connections themselves, to check the counters against.
type ShardCount struct {
	Idle, Leased, Releasing, Closing int
}

// Recount walks every connection of every backend in this shard. Loop-only.
func (sh *ShardPool) Recount() map[*Backend]ShardCount {
	out := make(map[*Backend]ShardCount)
	for _, b := range sh.pool.Backends() {
		s := b.shards[sh.Index]
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
func (sh *ShardPool) CloseAll() {
	for _, b := range sh.pool.Backends() {
		for c := range b.shards[sh.Index].conns {
			c.abortLease(codec.CloseGoingAway, "gateway shutting down")
			c.closeWith(codec.CloseGoingAway)
		}
	}
}
