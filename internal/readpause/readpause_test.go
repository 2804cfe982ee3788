package readpause

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/internal/testutil"
)

// sink is a gnet handler that counts what it reads from its one client.
type sink struct {
	gnet.BuiltinEventEngine
	conn  atomic.Pointer[gnet.Conn]
	got   atomic.Int64
	reads atomic.Int64
	eng   chan gnet.Engine
}

func (s *sink) OnBoot(e gnet.Engine) gnet.Action { s.eng <- e; return gnet.None }
func (s *sink) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s.conn.Store(&c)
	return nil, gnet.None
}
func (s *sink) OnTraffic(c gnet.Conn) gnet.Action {
	n, _ := c.Discard(-1)
	s.got.Add(int64(n))
	s.reads.Add(1)
	return gnet.None
}

// onLoop runs fn on c's loop and waits for it.
func onLoop(t *testing.T, c gnet.Conn, fn func()) {
	t.Helper()
	done := make(chan struct{})
	err := c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		fn()
		close(done)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	<-done
}

// TestPauseStopsReadingAndTCPPushesBack: a paused connection is not read,
// its sender blocks once the socket buffers are full, and after Resume
// every byte arrives.
func TestPauseStopsReadingAndTCPPushesBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &sink{eng: make(chan gnet.Engine, 1)}
	go func() { _ = gnet.Run(s, "tcp://"+addr, gnet.WithNumEventLoop(1)) }()
	eng := <-s.eng
	defer func() { _ = eng.Stop(context.Background()) }()
	var nc net.Conn
	testutil.CheckFor(t, 5*time.Second, func() error {
		nc, err = net.Dial("tcp", addr)
		return err
	})
	defer nc.Close()
	testutil.WaitFor(t, 5*time.Second, "connection open", func() bool { return s.conn.Load() != nil })
	c := *s.conn.Load()

	var loop *Loop
	onLoop(t, c, func() { loop, err = Find(c.Fd()) })
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	onLoop(t, c, func() { err = loop.Pause(c.Fd(), false) })
	if err != nil {
		t.Fatal(err)
	}

	const total = 64 << 20
	sent := make(chan error, 1)
	var wrote atomic.Int64
	go func() {
		chunk := make([]byte, 64<<10)
		for wrote.Load() < total {
			n, err := nc.Write(chunk)
			wrote.Add(int64(n))
			if err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	// The writer stalls: what it wrote stops growing, and the loop read
	// nothing of it.
	var last int64 = -1
	testutil.WaitFor(t, 10*time.Second, "the sender blocked by TCP", func() bool {
		time.Sleep(100 * time.Millisecond)
		w := wrote.Load()
		stalled := w == last
		last = w
		return stalled
	})
	if w := wrote.Load(); w >= total {
		t.Fatalf("the sender wrote all %d bytes to a paused connection", w)
	}
	if got := s.got.Load(); got != 0 {
		t.Fatalf("the loop read %d bytes of a paused connection", got)
	}

	onLoop(t, c, func() { err = loop.Resume(c.Fd(), c.OutboundBuffered() > 0) })
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "every byte read after Resume", func() bool { return s.got.Load() == total })
}

func TestFindRefusesAnUnknownDescriptor(t *testing.T) {
	if _, err := Find(1 << 20); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find of a descriptor nothing watches: %v", err)
	}
}
