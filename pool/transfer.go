package pool

import (
	"context"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Moving an idle connection between shards.
//
// An idle connection belongs to the loop it was enrolled on, and a session
// leases from its own loop, where the relay is a plain write. A backend
// with fewer connections than loops (a single-slot inference server, say)
// would leave sessions on the other loops waiting while a connection sits
// idle: so a shard whose session waits asks a shard with an idle
// connection of the lane (the group, and the subprotocol its backends
// agreed to) to hand one over.
//
// Connections to wss:// backends stay where they were enrolled: their TLS
// state lives on their loop.
//
// The hand-over keeps the socket, never its bytes in flight: on the donor
// loop the connection must be idle and clean (nothing buffered), its
// descriptor is duplicated, and the donor's copy is closed synchronously
// (EventLoop.Close: its epoll registration and descriptor go, the socket
// stays open through the duplicate, no FIN is sent). From then on no loop
// reads the socket until the receiving loop enrolls the duplicate, so
// whatever the backend sends meanwhile waits in the kernel for the new
// owner. The connection is counted as dialing in the receiving shard
// until it is enrolled there, like a fresh dial (per backend its Total
// never changes, so the Max bound holds throughout).

// askTransfers asks other shards for idle connections of lane, one per
// session waiting here that no earlier request covers. Loop-only.
func (sh *ShardPool) askTransfers(lane string) {
	for sh.transfersAsked[lane] < sh.waitingIn[lane] {
		donor := sh.pool.donorFor(lane, sh.Index)
		if donor == nil {
			return
		}
		sh.transfersAsked[lane]++
		to := sh
		if err := donor.Run(func() { donor.giveAway(lane, to) }); err != nil { // the engine is stopping
			sh.transfersAsked[lane]--
			return
		}
	}
}

// donorFor finds the shard (other than except) with the most idle
// connections of lane that take leases. It reads atomics only: the
// answer may be stale by the time the donor acts, which then refuses.
// Safe for concurrent use.
func (p *Pool) donorFor(lane string, except int) *ShardPool {
	var best *ShardPool
	var most int64
	group, protocol := splitLane(lane)
	for _, b := range p.Backends() {
		// A TLS connection's state is its loop's (keys, sequence
		// numbers, a record half read): it does not move.
		if b.Group() != group || b.Protocol() != protocol || !b.TakesLeases() || b.TLS {
			continue
		}
		for i, s := range b.shards {
			if i == except {
				continue
			}
			if n := s.Idle.Load(); n > most {
				best, most = p.shards[i], n
			}
		}
	}
	return best
}

// giveAway hands one idle connection of lane to shard to, or tells to
// that there is none. It keeps its connections for its own waiting
// sessions. Loop-only (the donor's loop).
func (sh *ShardPool) giveAway(lane string, to *ShardPool) {
	c := sh.takeForTransfer(lane)
	if c == nil {
		to.settleTransfer(lane, false)
		return
	}
	fd, err := unix.Dup(c.gc.Fd())
	if err != nil {
		// Out of descriptors: keep it here, where it is still good.
		c.local.pushIdle(c)
		sh.loop.Wheel().Schedule(&c.timer, c.lastRead+int64(c.settings().PingInterval))
		to.settleTransfer(lane, false)
		return
	}
	unix.CloseOnExec(fd)
	moved := to.newConn(c.backend)
	moved.expires, moved.lastRead, moved.transferLane, moved.protocol = c.expires, c.lastRead, lane, c.protocol
	c.moveTo(to)
	c.flags |= flagMoving
	_ = sh.loop.Loop().Close(c.gc) // synchronous: this loop lets go of the socket now
	go to.receive(moved, fd)
}

// takeForTransfer unlinks the best idle connection of lane for another
// shard, or returns nil: none here, or this shard's own sessions wait for
// the lane, or the best one still has bytes queued toward its backend
// (closing it here would cut them off mid-frame: it stays). TLS backends'
// connections are never taken. One that is not clean, or speaks another
// subprotocol than the lane's, is closed instead.
func (sh *ShardPool) takeForTransfer(lane string) *Conn {
	if sh.waitingIn[lane] > 0 {
		return nil
	}
	for {
		s := sh.pick(lane, true)
		if s == nil {
			return nil
		}
		c := s.popIdle()
		if c.gc.OutboundBuffered() > 0 {
			s.pushIdle(c) // its timer still runs
			return nil
		}
		sh.loop.Wheel().Stop(&c.timer)
		if c.gc.InboundBuffered() == 0 && c.reusable(sh.now()) && c.speaks(lane) {
			return c
		}
		c.close()
		sh.Signal()
	}
}

// moveTo moves c's place in the counters from its shard (idle) to shard
// to (dialing): the backend-wide Total does not change. Loop-only.
func (c *Conn) moveTo(to *ShardPool) {
	from, dst := &c.local.Counters, &c.backend.shards[to.Index].Counters
	from.Idle.Add(-1)
	from.Total.Add(-1)
	dst.Total.Add(1)
	dst.Dialing.Add(1)
	c.backend.Dialing.Add(1)
	c.backend.Idle.Add(-1)
}

// receive enrolls a moved connection's descriptor on this shard's loop,
// where it becomes idle and goes to a waiting session. Runs on its own
// goroutine (enrolling waits for the loop).
func (sh *ShardPool) receive(c *Conn, fd int) {
	f := os.NewFile(uintptr(fd), "backend")
	nc, err := net.FileConn(f) // a descriptor of its own; f's is closed below
	_ = f.Close()
	if err != nil {
		c.backend.DialAborted(sh.Index)
		sh.transferFailed(c.transferLane)
		return
	}
	if err := sh.enroll(context.Background(), c, nc); err != nil {
		sh.transferFailed(c.transferLane)
	}
}

// transferFailed tells the shard that an asked connection will not come:
// it was lost on the way, so reconcile has one to dial.
func (sh *ShardPool) transferFailed(lane string) {
	sh.Signal()
	sh.settleTransfer(lane, false)
}

// settleTransfer settles one request on this shard's loop (through
// Execute: the caller is another loop or goroutine). Safe for concurrent
// use.
func (sh *ShardPool) settleTransfer(lane string, arrived bool) {
	_ = sh.Run(func() { sh.transferSettled(lane, arrived) })
}

// transferSettled counts one request as answered. When a connection
// arrived and sessions still wait, it asks again; after a refusal it
// leaves the next request to the next reconcile sweep, so two shards
// never ask each other in a loop. Loop-only.
func (sh *ShardPool) transferSettled(lane string, arrived bool) {
	if sh.transfersAsked[lane] > 0 {
		sh.transfersAsked[lane]--
	}
	if arrived {
		sh.askTransfers(lane)
	}
}
