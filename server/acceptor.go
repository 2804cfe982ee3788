package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wsgate/wsgate/internal/looptls"
	"github.com/wsgate/wsgate/internal/ratelog"
)

// The acceptor takes client TCP connections off the listener itself and
// hands each to an event loop with EventLoop.Enroll. gnet's own accept
// treats EMFILE as fatal (the engine stops and closes its listeners while
// the process lives on), and it cannot refuse a connection before a loop
// has taken it. Here:
//
//   - a connection past MaxConns (or arriving while the server drains) is
//     answered 503 and closed at once, before any loop sees it;
//   - out of descriptors (EMFILE, ENFILE), one spare descriptor is given
//     up to accept the waiting connection and close it, so the queue does
//     not fill with clients that wait in vain; accepting pauses briefly
//     and resumes by itself when descriptors come back;
//   - the rest go to the loop with the fewest client connections; on
//     the TLS listener, after their handshake. While Config.TLSHandshakes
//     handshakes run, the TLS acceptor waits for one to end before it
//     accepts again: a burst of clients waits in the kernel's listen
//     queue, as it would for a busy nginx, instead of being closed.
//
// Owned by the acceptor goroutine (runAcceptor); the counters it shares
// with the loops are atomics.

// acceptedConn travels with a client connection from the acceptor to
// OnOpen on its loop (as the gnet context of the enroll).
type acceptedConn struct {
	shard  *Shard
	opened atomic.Bool         // OnOpen ran: the loop owns the connection
	tls    *looptls.Handshaken // its TLS state, handshake done; nil on the plain listener
	// TLS connections only (their PROXY header and per-IP check happen
	// before the handshake): the client's address and whether it was
	// counted in the per-IP limiter.
	client   netip.AddrPort
	admitted bool
}

// overCapacityResponse is written to connections refused before any loop
// sees them: past MaxConns or while draining.
var overCapacityResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\nRetry-After: 1\r\nContent-Length: 19\r\n\r\nserver at capacity\n")

// runAcceptor is the acceptor goroutine of ln (the plain listener, or the
// TLS one when isTLS): it accepts until ln is closed (Shutdown or Stop).
func (s *Server) runAcceptor(ln *net.TCPListener, isTLS bool) {
	defer s.acceptorDone.Done()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("acceptor panicked; new connections are no longer accepted", zap.Any("panic", r))
			s.fail(errors.New("server: acceptor panicked"))
		}
	}()
	spare := openSpare()
	defer func() {
		if spare != nil {
			_ = spare.Close()
		}
	}()
	pause := time.Duration(0)
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				spare = s.shedOne(ln, spare, isTLS)
				pause = min(max(2*pause, time.Millisecond), 50*time.Millisecond)
				s.limitedWarn(&s.acceptLog, "out of descriptors: refusing new connections",
					zap.Error(err), zap.Int64("open", s.stats.Open.Load()))
				time.Sleep(pause)
				continue
			}
			s.limitedWarn(&s.acceptLog, "accept failed", zap.Error(err))
			time.Sleep(time.Millisecond)
			continue
		}
		pause = 0
		s.stats.Accepted.Add(1)
		if s.shuttingDown.Load() || s.stats.Open.Load() >= int64(s.cfg.MaxConns) {
			s.refuseAtAccept(c, isTLS)
			continue
		}
		s.stats.Open.Add(1)
		if !isTLS {
			s.handOff(c, &acceptedConn{})
			continue
		}
		if !s.takeHandshakeSlot() { // the listeners closed while it waited
			_ = c.Close()
			s.stats.Open.Add(-1)
			return
		}
		s.handshakes.Add(1)
		go s.handshakeTLS(c)
	}
}

// takeHandshakeSlot takes one of the Config.TLSHandshakes slots, waiting
// (and counting the wait) while every slot is taken; false if the
// listeners close first.
func (s *Server) takeHandshakeSlot() bool {
	select {
	case s.tlsSlots <- struct{}{}:
		return true
	default:
	}
	s.stats.TLSHandshakeWaits.Add(1)
	select {
	case s.tlsSlots <- struct{}{}:
		return true
	case <-s.listening.Done():
		return false
	}
}

// handOff gives c (counted in Open) to the loop with the fewest client
// connections; ties go round the loops, so sessions one after another
// still use every loop. The acceptor and the TLS handshakes call it.
func (s *Server) handOff(c *net.TCPConn, ac *acceptedConn) {
	first := int(s.nextLoop.Add(1) % uint64(len(s.loops)))
	sh := s.loops[first]
	for i := 1; i < len(s.loops); i++ {
		if o := s.loops[(first+i)%len(s.loops)]; o.clients.Load() < sh.clients.Load() {
			sh = o
		}
	}
	sh.clients.Add(1)
	ac.shard = sh
	res, err := sh.loop.Enroll(gnet.NewContext(context.Background(), ac), c)
	if err != nil {
		_ = c.Close()
		s.enrollFailed(ac, err)
		return
	}
	go s.awaitEnroll(res, ac)
}

// awaitEnroll undoes the count of a connection no loop took. gnet sends
// the result after OnOpen ran, and reports a failed registration as a
// success without OnOpen, hence the opened flag.
func (s *Server) awaitEnroll(res <-chan gnet.RegisteredResult, ac *acceptedConn) {
	r := <-res
	if r.Err != nil || !ac.opened.Load() {
		err := r.Err
		if err == nil {
			err = errors.New("the event loop did not register it")
		}
		s.enrollFailed(ac, err)
	}
}

// enrollFailed undoes what was counted for a connection no loop took.
func (s *Server) enrollFailed(ac *acceptedConn, err error) {
	s.stats.Open.Add(-1)
	ac.shard.clients.Add(-1)
	s.releasePerIP(ac)
	s.stats.EnrollFailures.Add(1)
	s.limitedWarn(&s.acceptLog, "could not hand a connection to an event loop", zap.Error(err))
}

// refuseAtAccept answers 503 (on the plain listener) and closes, never
// waiting for the client: the write goes into an empty socket buffer, or
// is dropped. A TLS client just sees the connection end.
func (s *Server) refuseAtAccept(c *net.TCPConn, isTLS bool) {
	s.stats.closed[ReasonOverCapacity].Add(1)
	if !isTLS {
		s.stats.countRefusal(503)
		writeWithoutWaiting(c, overCapacityResponse)
	}
	_ = c.Close()
	s.limitedInfo(&s.refuseLog, "connection refused at accept",
		zap.Bool("draining", s.shuttingDown.Load()), zap.Int64("open", s.stats.Open.Load()), zap.Int("max_conns", s.cfg.MaxConns))
}

// writeWithoutWaiting makes one write(2) of p on c, whatever it takes of
// it. (A write deadline of now would not do: Go refuses the write outright
// once the deadline has passed.)
func writeWithoutWaiting(c *net.TCPConn, p []byte) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Write(func(fd uintptr) bool {
		_, _ = syscall.Write(int(fd), p)
		return true // done, written or not: never wait for room
	})
}

// shedOne is the last resort when the process is out of descriptors: give
// up the spare, accept the oldest waiting connection, refuse it, and take
// the spare back.
func (s *Server) shedOne(ln *net.TCPListener, spare *os.File, isTLS bool) *os.File {
	s.stats.AcceptEMFILE.Add(1)
	if spare == nil {
		return openSpare()
	}
	_ = spare.Close()
	if c, err := ln.AcceptTCP(); err == nil {
		s.stats.Accepted.Add(1)
		s.refuseAtAccept(c, isTLS)
	}
	return openSpare()
}

// openSpare holds one descriptor in reserve for shedOne.
func openSpare() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil
	}
	return f
}

// limitedWarn and limitedInfo log at most one line a second per limiter,
// with the number of lines suppressed since the last one.
func (s *Server) limitedWarn(l *ratelog.Limiter, msg string, fields ...zap.Field) {
	s.limitedLog(zap.WarnLevel, l, msg, fields...)
}

func (s *Server) limitedInfo(l *ratelog.Limiter, msg string, fields ...zap.Field) {
	s.limitedLog(zap.InfoLevel, l, msg, fields...)
}

func (s *Server) limitedLog(lvl zapcore.Level, l *ratelog.Limiter, msg string, fields ...zap.Field) {
	l.Log(s.log, lvl, msg, fields...)
}
