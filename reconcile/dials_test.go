package reconcile_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/rawbackend"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/reconcile"
)

// backoffCap is the longest backoff the schedule allows: 1 s +20%, and a
// little for the clock read between the two atomics.
const backoffCap = 1200*time.Millisecond + 50*time.Millisecond

func dialBackend(t *testing.T, url string) *pool.Backend {
	t.Helper()
	p := pool.New(pool.Config{Shards: 1})
	st, err := pool.Settings{URL: url}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetBackends([]pool.Settings{st}); err != nil {
		t.Fatal(err)
	}
	return p.Backends()[0]
}

// TestDialGivesUpWhenCancelled: a backend accepts and never answers the
// upgrade; cancelling the context ends the handshake at once, long before
// the dial timeout.
func TestDialGivesUpWhenCancelled(t *testing.T) {
	defer checkNoLeaks(t)()
	be := listenBackend(t, "127.0.0.1:0", modeHang)
	defer be.Close()
	b := dialBackend(t, be.URL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		d, err := reconcile.Dial(ctx, b, reconcile.DialOptions{Timeout: time.Minute})
		if d != nil {
			_ = d.TCP.Close()
		}
		errc <- err
	}()
	testutil.WaitFor(t, 5*time.Second, "the backend holds the connection", func() bool { return be.Open() == 1 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Dial did not give up when its context was cancelled")
	}
	testutil.WaitFor(t, 5*time.Second, "the connection closed", func() bool { return be.Open() == 0 })
}

// TestDialLeavesBytesAfterTheResponse: a backend that sends a frame in the
// same segment as its 101: Dial consumes the response and nothing more.
func TestDialLeavesBytesAfterTheResponse(t *testing.T) {
	defer checkNoLeaks(t)()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	frame := []byte{0x81, 5, 'h', 'e', 'l', 'l', 'o'}
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var block []byte
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				served <- err
				return
			}
			block = append(block, line...)
			if len(line) <= 2 {
				break
			}
		}
		req, err := codec.ParseUpgrade(block)
		if err != nil {
			served <- err
			return
		}
		_, err = c.Write(append(codec.AppendAccept(nil, req.Key, ""), frame...))
		served <- err
		_, _ = io.Copy(io.Discard, r)
	}()
	b := dialBackend(t, "ws://"+ln.Addr().String()+"/")
	d, err := reconcile.Dial(context.Background(), b, reconcile.DialOptions{Timeout: 5 * time.Second, SocketBuffer: reconcile.DefaultSocketBuffer})
	if err != nil {
		t.Fatal(err)
	}
	nc := d.TCP
	defer nc.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != string(frame) {
		t.Fatalf("after the handshake read %q, %v; want the frame %q", got, err, frame)
	}
	// The socket's buffers are the configured ones (the kernel doubles
	// them), not autotuned: flow control sees the queue, not the kernel.
	rc, _ := nc.SyscallConn()
	var snd, rcv int
	_ = rc.Control(func(fd uintptr) {
		snd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	if snd != 2*reconcile.DefaultSocketBuffer || rcv != 2*reconcile.DefaultSocketBuffer {
		t.Fatalf("socket buffers %d/%d, want %d", snd, rcv, 2*reconcile.DefaultSocketBuffer)
	}
}

// TestPoolRefillsWithinSecondsOfBackendReturn is the regression test for a
// short backend outage: the pool used to back off once per failed dial (16
// dials failing together reached the 30 s cap) and to retry only at the
// 5 s tick, so a 1 s blip meant up to 35 s without connections. Now the
// backoff steps once per episode, is capped at 1 s, and the worker wakes
// when it ends: the pool is full again within about a second of the
// backend's return. The reconciler runs with its default 5 s tick.
func TestPoolRefillsWithinSecondsOfBackendReturn(t *testing.T) {
	defer checkNoLeaks(t)()
	be := listenBackend(t, "127.0.0.1:0", modeServe)
	addr := be.Addr()
	defer func() { be.Close() }()
	g := startGateway(t, 2, pool.Settings{URL: be.URL(), Target: 4, DialTimeout: time.Second, PingInterval: time.Minute})
	defer g.srv.Stop()
	rec := reconcile.Start(reconcile.Config{Pool: g.pool, Logger: zaptest.NewLogger(t)})
	defer rec.Stop()
	b := g.pool.Backends()[0]
	testutil.WaitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 4 })

	be.Close() // the backend goes away: its connections close, redials are refused
	testutil.WaitFor(t, 5*time.Second, "backend marked down", func() bool { return !b.Healthy() && b.Idle.Load() == 0 })
	// The outage lasts until three more dials were refused (about 0.7 s
	// with the schedule); the backoff never passes its cap meanwhile.
	failures := b.DialFailures.Load()
	testutil.WaitFor(t, 10*time.Second, "three more refused dials", func() bool {
		now := time.Now()
		if _, until := b.BackedOff(now); until.Sub(now) > backoffCap {
			t.Fatalf("backed off for %v, past the 1 s cap", until.Sub(now))
		}
		return b.DialFailures.Load() >= failures+3
	})

	be = listenBackend(t, addr, modeServe) // back, on the same port
	took := testutil.WaitFor(t, 3*time.Second, "pool refilled", func() bool { return b.Healthy() && b.Idle.Load() == 4 })
	t.Logf("pool refilled %v after the backend came back", took)
}

// TestOneProbeAtATimeAndItsClaimAlwaysReturns: while a backend is down,
// only one dial reaches it at a time across every shard (the probe),
// each after the backoff; the probe claim comes back after a probe
// fails, after one is cancelled by Stop, and after one succeeds; and a
// probe that succeeds wakes every shard, so all of their pools refill,
// not just the prober's.
func TestOneProbeAtATimeAndItsClaimAlwaysReturns(t *testing.T) {
	defer checkNoLeaks(t)()
	be := listenBackend(t, "127.0.0.1:0", modeDrop)
	defer be.Close()
	const shards = 4
	g := startGateway(t, shards, pool.Settings{URL: be.URL(), Target: 2 * shards, DialTimeout: time.Minute, PingInterval: time.Minute})
	defer g.srv.Stop()
	rec := reconcile.Start(reconcile.Config{Pool: g.pool, Logger: zaptest.NewLogger(t)})
	defer rec.Stop()
	b := g.pool.Backends()[0]

	// Every shard dials at first (the backend is presumed healthy); they
	// all fail. From then on only probes dial.
	testutil.WaitFor(t, 5*time.Second, "backend marked down", func() bool { return !b.Healthy() && b.Dialing.Load() == 0 })
	oneProbe := func() bool {
		now := time.Now()
		if d := b.Dialing.Load(); d > 1 {
			t.Fatalf("%d dials in flight to an unhealthy backend", d)
		}
		if _, until := b.BackedOff(now); until.Sub(now) > backoffCap {
			t.Fatalf("backed off for %v, past the 1 s cap", until.Sub(now))
		}
		return true
	}

	// Failure: a probe after a failed probe means the claim came back.
	accepted := be.accepted.Load()
	testutil.WaitFor(t, 10*time.Second, "three more probes, one at a time", func() bool {
		return oneProbe() && be.accepted.Load() >= accepted+3
	})

	// Abort: a probe hangs; Stop cancels it promptly.
	be.setMode(modeHang)
	testutil.WaitFor(t, 10*time.Second, "a probe hangs", func() bool {
		return oneProbe() && b.Probing() && be.Open() == 1
	})
	failures := b.DialFailures.Load()
	within(t, "Reconciler.Stop with a hung probe", 5*time.Second, rec.Stop)
	if b.Probing() || b.Dialing.Load() != 0 || b.Total.Load() != 0 || b.DialFailures.Load() != failures {
		t.Fatalf("after Stop: probing %v, dialing %d, total %d, failures %d (were %d)",
			b.Probing(), b.Dialing.Load(), b.Total.Load(), b.DialFailures.Load(), failures)
	}
	testutil.WaitFor(t, 5*time.Second, "the hung probe's connection closed", func() bool { return be.Open() == 0 })

	// Success: the backend serves again; a new reconciler's probe gets
	// through, and every shard fills, not only the one that probed.
	be.setMode(modeServe)
	rec = reconcile.Start(reconcile.Config{Pool: g.pool, Logger: zaptest.NewLogger(t)})
	defer rec.Stop()
	testutil.WaitFor(t, 3*time.Second, "every shard refilled", func() bool {
		for i := 0; i < shards; i++ {
			if b.InShard(i).Idle.Load() != 2 {
				return false
			}
		}
		return b.Healthy()
	})
	if b.Probing() {
		t.Fatal("probe claim still held after the backend is healthy")
	}
}

// TestHungBackendDoesNotStarveHealthyOne is the regression test for a
// backend that accepts TCP and never answers the upgrade. A reconcile run
// used to wait for all its dials, so the hung ones held the shard's run
// for the whole dial timeout (30 s here): with release policy close,
// sessions to the healthy backend found no connection and got 1013. Now
// dials are independent: the healthy backend is refilled after every
// session while the hung dials are pending, those stay within the
// per-backend cap, and Stop cancels them at once with every reservation
// given back.
func TestHungBackendDoesNotStarveHealthyOne(t *testing.T) {
	defer checkNoLeaks(t)()
	hung := listenBackend(t, "127.0.0.1:0", modeHang)
	defer hung.Close()
	echo, err := rawbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	const shards, perBackend = 2, 2
	hungURL, echoURL := hung.URL(), "ws://"+echo.Addr()+"/"
	settings := func(url string) pool.Settings {
		return pool.Settings{URL: url, Target: 2, Policy: pool.PolicyClose, DialTimeout: 30 * time.Second}
	}
	g := startGateway(t, shards, settings(hungURL), settings(echoURL))
	defer g.srv.Stop()
	rec := reconcile.Start(reconcile.Config{Pool: g.pool, Logger: zaptest.NewLogger(t), DialsPerBackend: perBackend})
	defer rec.Stop()
	hb, eb := g.backend(hungURL), g.backend(echoURL)

	var stopMonitor sync.Once
	monitorDone, stop := make(chan struct{}), make(chan struct{})
	var capErr error
	go func() { // the per-backend dial cap holds at every instant
		defer close(monitorDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if d := hb.Dialing.Load(); d > shards*perBackend && capErr == nil {
				capErr = fmt.Errorf("%d dials in flight to the hung backend, cap %d", d, shards*perBackend)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	endMonitor := func() { stopMonitor.Do(func() { close(stop); <-monitorDone }) }
	defer endMonitor()

	testutil.WaitFor(t, 5*time.Second, "healthy backend filled while the hung dials pend", func() bool {
		return eb.Idle.Load() == 2 && hb.Dialing.Load() > 0
	})
	// Rounds of six sessions at once; each closes its backend connection
	// when it ends (policy close), so every round needs fresh dials.
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- echoSession(g.srv.Addr(), fmt.Sprintf("round %d session %d", round, i))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	// At least its target: a connection moved between shards for a waiting
	// session may leave one shard above its share for an idle timeout.
	testutil.WaitFor(t, 5*time.Second, "healthy backend refilled", func() bool { return eb.Idle.Load() >= 2 })
	if hb.Dialing.Load() == 0 || hb.Total.Load() != hb.Dialing.Load() {
		t.Fatalf("hung backend: dialing %d, total %d: its dials should still be pending", hb.Dialing.Load(), hb.Total.Load())
	}
	endMonitor()
	if capErr != nil {
		t.Fatal(capErr)
	}

	within(t, "Reconciler.Stop with hung dials in flight", 5*time.Second, rec.Stop)
	if hb.Dialing.Load() != 0 || hb.Total.Load() != 0 || hb.DialFailures.Load() != 0 || hb.Probing() || !hb.Healthy() {
		t.Fatalf("hung backend after Stop: dialing %d, total %d, failures %d, probing %v, healthy %v",
			hb.Dialing.Load(), hb.Total.Load(), hb.DialFailures.Load(), hb.Probing(), hb.Healthy())
	}
	testutil.WaitFor(t, 5*time.Second, "healthy backend's counters settle", func() bool {
		return eb.Dialing.Load() == 0 && eb.Total.Load() == eb.Idle.Load()
	})
	testutil.WaitFor(t, 5*time.Second, "the hung connections closed", func() bool { return hung.Open() == 0 })
}

// echoSession opens a session through the gateway, checks one echo and
// closes it.
func echoSession(addr, msg string) error {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	_, got, err := c.ReadMessage()
	if err != nil {
		return fmt.Errorf("%s: %w", msg, err)
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	return nil
}
