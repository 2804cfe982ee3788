package gateway_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// Regression tests for the hardening issue at the gateway level.

// TestSingleConnectionServesEveryLoop (defect 9): with -pool-size 1
// -pool-max 1 on two loops, every session used to get 1013 after the
// acquire timeout while the only connection sat idle on the other loop.
// Sessions now take the idle connection from whichever loop holds it.
func TestSingleConnectionServesEveryLoop(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "2", "-pool-size", "1", "-pool-max", "1",
		"-release-policy", "reuse", "-acquire-timeout", "2s")
	b := g.backend(0)
	testutil.WaitFor(t, 5*time.Second, "the one connection idle", func() bool { return b.Idle.Load() == 1 })
	// Sessions one after another land on both loops (the acceptor spreads
	// them); each must be served by the single connection.
	for i := 0; i < 12; i++ {
		c := dial(t, g.url("/"), nil)
		roundTrip(t, c, websocket.TextMessage, []byte(fmt.Sprintf("session %d", i)))
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
		expectClose(t, c, 1000)
		c.Close()
		testutil.WaitFor(t, 5*time.Second, "released", func() bool { return b.Leased.Load() == 0 && b.Idle.Load() == 1 })
	}
	var perShard [2]int64
	for i := range perShard {
		perShard[i] = b.InShard(i).Leases.Load()
	}
	if perShard[0] == 0 || perShard[1] == 0 {
		t.Fatalf("leases per loop %v: the sessions did not reach both loops", perShard)
	}
	if total := b.Total.Load(); total > 1 {
		t.Fatalf("total %d over max 1", total)
	}
}

// TestSingleConnectionUnderConcurrency: with the connection busy, sessions
// on any loop wait and are served in turn; none gets 1013 while the
// holder releases within the acquire timeout.
func TestSingleConnectionUnderConcurrency(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "2", "-pool-size", "1", "-pool-max", "1",
		"-release-policy", "reuse", "-acquire-timeout", "5s")
	b := g.backend(0)
	testutil.WaitFor(t, 5*time.Second, "the one connection idle", func() bool { return b.Idle.Load() == 1 })
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := websocket.DefaultDialer.Dial(g.url("/"), nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			msg := fmt.Sprintf("client %d", i)
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				errs <- err
				return
			}
			if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
				errs <- fmt.Errorf("client %d: %q, %v", i, got, err)
				return
			}
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			_, _, _ = c.ReadMessage()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := g.Server.Stats().Closed(server.ReasonAcquireTimeout); n != 0 {
		t.Fatalf("%d sessions got 1013", n)
	}
}

// TestAcquireTimeoutStopsWaitingAtOnce (defect 12): a session whose acquire
// timeout fired still counted as waiting until its close handshake ended,
// so reconcile kept dialing for it. Here the client never answers the
// 1013, and the wait is over anyway.
func TestAcquireTimeoutStopsWaitingAtOnce(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "1", "-pool-size", "1", "-pool-max", "1",
		"-acquire-timeout", "200ms", "-close-timeout", "30s")
	b := g.backend(0)
	testutil.WaitFor(t, 5*time.Second, "pool filled", func() bool { return b.Idle.Load() == 1 })
	holder := dial(t, g.url("/"), nil)
	defer holder.Close()
	roundTrip(t, holder, websocket.TextMessage, []byte("mine"))
	// A raw client that reads nothing, so the close handshake stays open.
	waiter := dial(t, g.url("/"), nil)
	defer waiter.Close()
	testutil.WaitFor(t, 5*time.Second, "the 1013 sent", func() bool {
		return g.Server.Stats().Closed(server.ReasonAcquireTimeout) == 1
	})
	if w := g.Pool.Shard(0).Waiting.Load(); w != 0 {
		t.Fatalf("%d sessions still waiting after their acquire timeout", w)
	}
}
