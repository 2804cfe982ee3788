package server

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/wheel"
	"github.com/wsgate/wsgate/pool"
)

// wheelSlots is the timer wheel size: with the default 100 ms tick one
// revolution is 51.2 s, longer than the default ping interval.
const wheelSlots = 512

// shard is everything one event loop owns. Loop-only, except the fields
// set at creation (srv, loop, index) which are read-only afterwards.
type shard struct {
	srv   *Server
	loop  gnet.EventLoop // Execute is the only way in from other goroutines
	index int            // creation order, for logs

	anchor   gnet.Conn   // this loop's anchor connection (see Server.anchorLoops)
	pool     *pool.Shard // this loop's backend connections (gateway only)
	wheel    *wheel.Wheel
	sessions map[*Session]struct{} // open client connections, for shutdown
	tickFn   gnet.RunnableFunc     // advances the wheel; allocated once

	// Sessions is the number of upgraded sessions open on this shard
	// (written on the loop, read by anyone).
	Sessions atomic.Int64
	// clients is the number of client connections handed to this loop
	// and not yet closed (the acceptor adds, the loop subtracts); the
	// acceptor gives new connections to the loop with the fewest.
	clients atomic.Int64

	// Scratch space for encoding on the loop; reused by every write.
	hdr     [codec.MaxHeaderSize]byte
	iov     [2][]byte
	scratch []byte
}

func newShard(srv *Server, loop gnet.EventLoop, index int) *shard {
	sh := &shard{
		srv:      srv,
		loop:     loop,
		index:    index,
		wheel:    wheel.New(wheelSlots, int64(srv.cfg.TickInterval), srv.now()),
		sessions: make(map[*Session]struct{}),
		scratch:  make([]byte, 0, 512),
	}
	if srv.cfg.Pool != nil {
		sh.pool = srv.cfg.Pool.Shard(index)
		sh.pool.Attach(loop, sh.wheel)
	}
	sh.tickFn = func(context.Context) error {
		sh.wheel.Advance(srv.now())
		return nil
	}
	return sh
}

// runTicker asks the loop to advance the shard's timer wheel every tick, so
// no connection needs a goroutine or a runtime timer of its own.
func (sh *shard) runTicker(ctx context.Context) {
	defer sh.srv.tickers.Done()
	defer func() {
		if r := recover(); r != nil {
			sh.srv.log.Error("shard ticker panicked", zap.Int("shard", sh.index), zap.Any("panic", r))
		}
	}()
	t := time.NewTicker(sh.srv.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := sh.loop.Execute(ctx, sh.tickFn); err != nil {
				return // the engine is shutting down
			}
		}
	}
}

// now is the shard's coarse clock: the time of the last tick. Loop-only.
func (sh *shard) now() int64 { return sh.wheel.Now() }

// openSession starts a session for a new client connection. Loop-only.
func (sh *shard) openSession(c gnet.Conn) {
	srv := sh.srv
	s := &Session{conn: c, shard: sh, id: srv.nextID.Add(1), started: srv.now()}
	s.timer.Owner = s
	c.SetContext(s)
	sh.sessions[s] = struct{}{}
	if srv.draining.Load() { // accepted just before Shutdown began
		s.flags |= flagRefuseBusy
	}
	s.lastRead = sh.now()
	sh.wheel.Schedule(&s.timer, sh.now()+int64(srv.cfg.HandshakeTimeout))
}

// closeAll starts the close handshake (1001) with every session and cuts
// connections still handshaking. Loop-only.
func (sh *shard) closeAll() {
	for s := range sh.sessions {
		s.shutdown()
	}
}

// writeFrame writes one unmasked frame to c as header and payload in a
// single writev. Loop-only.
func (sh *shard) writeFrame(c gnet.Conn, op ws.OpCode, fin bool, payload []byte) error {
	n := codec.PutHeader(sh.hdr[:], ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload))})
	sh.iov[0], sh.iov[1] = sh.hdr[:n], payload
	_, err := c.Writev(sh.iov[:])
	sh.iov[0], sh.iov[1] = nil, nil
	return err
}
