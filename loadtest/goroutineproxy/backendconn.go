package goroutineproxy

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/jitter"
)

// Connection states; a connection is broken for good.
const (
	connIdle   int32 = iota // in the idle channel (or on its way there)
	connLeased              // bound to one session
	connBroken              // closed, or about to be
)

// backendConn is one pooled connection to a backend. Its reader goroutine
// relays backend->client and sees pongs; its health goroutine pings it when
// it has been quiet. State moves by CAS, so a failure racing a lease or a
// release is counted exactly once.
type backendConn struct {
	id       uint64
	pool     *Pool
	ws       *websocket.Conn
	state    atomic.Int32
	session  atomic.Pointer[session] // the session it serves while leased
	lastRead atomic.Int64            // unix ns of the last frame or pong from the backend

	closeOnce sync.Once
	closed    chan struct{} // closed by closeConn; ends the health goroutine
}

func newBackendConn(p *Pool, id uint64, ws *websocket.Conn) *backendConn {
	bc := &backendConn{id: id, pool: p, ws: ws, closed: make(chan struct{})}
	bc.state.Store(connIdle)
	bc.lastRead.Store(time.Now().UnixNano())
	ws.SetReadLimit(p.cfg.MaxMessageBytes)
	ws.SetPongHandler(func(string) error {
		bc.lastRead.Store(time.Now().UnixNano())
		return nil
	})
	return bc
}

// markBroken retires the connection after a failure, once: a broken idle
// connection is counted dead until reconcile or an acquirer removes it from
// the channel; a broken leased one ends its session, whose release then
// drops it.
func (bc *backendConn) markBroken(why string) {
	for {
		prev := bc.state.Load()
		if prev == connBroken {
			return
		}
		if !bc.state.CompareAndSwap(prev, connBroken) {
			continue
		}
		p := bc.pool
		p.broken.Add(1)
		if prev == connIdle {
			p.nDeadIdle.Add(1)
		}
		if ce := p.log.Check(zap.DebugLevel, "backend connection broken"); ce != nil {
			ce.Write(zap.Uint64("conn", bc.id), zap.String("why", why), zap.Bool("leased", prev == connLeased))
		}
		bc.closeConn()
		if s := bc.session.Load(); s != nil {
			s.backendGone()
		}
		p.Signal()
		return
	}
}

// closeConn closes the socket once.
func (bc *backendConn) closeConn() {
	bc.closeOnce.Do(func() {
		close(bc.closed)
		_ = bc.ws.Close()
	})
}

// readLoop relays every backend message to the session the connection is
// leased to, or drops it while idle. Runs until the connection breaks.
func (bc *backendConn) readLoop() {
	defer bc.pool.conns.Done()
	defer recoverLog(bc.pool.log, "backend reader")
	for {
		mt, r, err := bc.ws.NextReader()
		if err != nil {
			bc.markBroken("read: " + err.Error())
			return
		}
		bc.lastRead.Store(time.Now().UnixNano())
		s := bc.session.Load()
		if s == nil {
			// A late echo of a finished session, or backend chatter.
			if _, err := io.Copy(io.Discard, r); err != nil {
				bc.markBroken("read: " + err.Error())
				return
			}
			continue
		}
		s.toClient(mt, r)
	}
}

// healthLoop pings the connection whenever it has been quiet for a health
// interval, and breaks it when the pong does not come in time. Leased
// connections carrying traffic are never pinged: traffic is the proof.
func (bc *backendConn) healthLoop() {
	defer bc.pool.conns.Done()
	defer recoverLog(bc.pool.log, "backend health")
	cfg := bc.pool.cfg
	t := time.NewTimer(jitter.Scale(cfg.HealthInterval, 0.1))
	defer t.Stop()
	var pingSent int64 // unix ns of the outstanding ping, 0 if none
	for {
		select {
		case <-bc.closed:
			return
		case <-t.C:
		}
		now := time.Now()
		last := bc.lastRead.Load()
		switch {
		case pingSent != 0 && last < pingSent && now.UnixNano()-pingSent >= int64(cfg.PongTimeout):
			bc.markBroken("no pong")
			return
		case pingSent != 0 && last >= pingSent:
			pingSent = 0
		}
		if pingSent == 0 && now.UnixNano()-last >= int64(cfg.HealthInterval) {
			if err := bc.ws.WriteControl(websocket.PingMessage, nil, now.Add(time.Second)); err != nil {
				bc.markBroken("ping: " + err.Error())
				return
			}
			pingSent = now.UnixNano()
			t.Reset(cfg.PongTimeout)
			continue
		}
		t.Reset(jitter.Scale(cfg.HealthInterval, 0.1))
	}
}

// recoverLog logs a panic of a named goroutine instead of crashing the
// whole proxy with it.
func recoverLog(log *zap.Logger, goroutine string) {
	if r := recover(); r != nil {
		log.Error("goroutine panicked", zap.String("goroutine", goroutine), zap.Any("panic", r), zap.Stack("stack"))
	}
}
