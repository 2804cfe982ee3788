package gateway_test

import (
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// checkBound asserts the pool invariant at any instant, concurrently with
// everything else: per backend, Total (dialing+idle+leased+releasing, one
// atomic that only grows by compare-and-swap against Max) never passes
// Max, and no counter is negative. The parts are separate atomics; read
// one by one while connections move between them, their sum can count a
// moving connection twice, so the parts are checked against Total at
// quiet points (see the end of the test) and against the connections
// themselves on the loop (recount).
func checkBound(p *pool.Pool) error {
	for _, b := range p.Backends() {
		max := int64(b.Settings().Max)
		if total := b.Total.Load(); total > max {
			return fmt.Errorf("backend %d: total %d over max %d", b.ID, total, max)
		}
		cs := []*pool.Counters{&b.Counters}
		for i := range p.Shards() {
			cs = append(cs, b.InShard(i))
		}
		for i, c := range cs {
			for name, v := range map[string]int64{"total": c.Total.Load(), "dialing": c.Dialing.Load(),
				"idle": c.Idle.Load(), "leased": c.Leased.Load(), "releasing": c.Releasing.Load(), "closing": c.Closing.Load()} {
				if v < 0 || v > max {
					return fmt.Errorf("backend %d view %d: %s = %d outside [0, max %d]", b.ID, i, name, v, max)
				}
			}
		}
	}
	return nil
}

// recount compares, on each shard's loop, the connections themselves with
// the counters the loop keeps (exact there: only the loop writes them).
func recount(p *pool.Pool) error {
	for _, sh := range p.Shards() {
		errc := make(chan error, 1)
		err := sh.Run(func() {
			var bad error
			for b, n := range sh.Recount() {
				c := b.InShard(sh.Index)
				if int64(n.Idle) != c.Idle.Load() || int64(n.Leased) != c.Leased.Load() ||
					int64(n.Releasing) != c.Releasing.Load() || int64(n.Closing) != c.Closing.Load() {
					bad = fmt.Errorf("shard %d backend %d: recount idle %d leased %d releasing %d closing %d, counters %d %d %d %d",
						sh.Index, b.ID, n.Idle, n.Leased, n.Releasing, n.Closing,
						c.Idle.Load(), c.Leased.Load(), c.Releasing.Load(), c.Closing.Load())
				}
			}
			errc <- bad
		})
		if err != nil {
			return err
		}
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-time.After(5 * time.Second):
			return errors.New("recount: loop did not answer")
		}
	}
	return nil
}

// TestPoolInvariantsUnderChurn: many sessions start and end at once, some
// abruptly, backends kill connections under sessions, connections retire
// after a short lifetime and surplus ones after a short idle timeout,
// reconcile runs throughout. At every sample the bound holds; at every
// checkpoint the counters equal a recount; after shutdown nothing leaks.
// Each release policy moves connections along its own path (back to idle
// at once, through a reset, or closed and replaced), so each runs.
func TestPoolInvariantsUnderChurn(t *testing.T) {
	for _, policy := range []string{"reuse", "reset", "close"} {
		t.Run(policy, func(t *testing.T) {
			args := []string{"-release-policy", policy}
			if policy == "reset" {
				args = append(args, "-reset-quiet", "20ms") // a drain: the script backend sends nothing unprompted
			}
			churn(t, args...)
		})
	}
}

func churn(t *testing.T, policyArgs ...string) {
	ignore := goleak.IgnoreCurrent()
	fdsBefore := testutil.OpenFDs(t)

	const target = 4
	handlers := []server.Handler{&scriptBackend{}, &scriptBackend{}, &scriptBackend{}}
	g := startGateway(t, handlers, append([]string{"-loops", "2", "-pool-size", fmt.Sprint(target), "-pool-max", "10",
		"-max-lifetime", "300ms", "-idle-timeout", "100ms", "-dial-timeout", "1s",
		"-close-timeout", "500ms", "-acquire-timeout", "300ms"}, policyArgs...)...)
	// On failure the cleanups stop everything; on success the end of the
	// test does, to check that nothing is left.

	stop := make(chan struct{})
	var monitorErr atomic.Pointer[error]
	var samples atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the bound, sampled as fast as possible
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := checkBound(g.Pool); err != nil {
				monitorErr.CompareAndSwap(nil, &err)
				return
			}
			samples.Add(1)
		}
	}()

	const clients, rounds = 24, 12
	var sessions, echoed, refused atomic.Int64
	var clientErr atomic.Pointer[error]
	var clientsWG sync.WaitGroup
	for i := 0; i < clients; i++ {
		clientsWG.Add(1)
		go func(seed int64) {
			defer clientsWG.Done()
			rng := rand.New(rand.NewSource(seed))
			for r := 0; r < rounds; r++ {
				c, _, err := websocket.DefaultDialer.Dial(g.url("/"), nil)
				if err != nil {
					refused.Add(1) // 503 while every backend is backed off is allowed
					continue
				}
				sessions.Add(1)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				for m := 0; m < 1+rng.Intn(4); m++ {
					msg := fmt.Sprintf("c%d r%d m%d", seed, r, m)
					if c.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
						break
					}
					_, got, err := c.ReadMessage()
					if err != nil {
						break // 1011 or 1013: the churn is the point
					}
					if string(got) != msg {
						e := fmt.Errorf("echo mismatch: sent %q got %q", msg, got)
						clientErr.CompareAndSwap(nil, &e)
					}
					echoed.Add(1)
				}
				switch rng.Intn(4) {
				case 0: // the backend kills the connection under the session
					_ = c.WriteMessage(websocket.TextMessage, []byte("die"))
					_, _, _ = c.ReadMessage()
				case 1: // the client vanishes
				default:
					_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
					_, _, _ = c.ReadMessage()
				}
				_ = c.Close()
			}
		}(int64(i))
	}
	clientsDone := make(chan struct{})
	go func() { clientsWG.Wait(); close(clientsDone) }()
	checkpoints := 0
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
churn:
	for {
		select {
		case <-tick.C:
			if err := recount(g.Pool); err != nil {
				t.Fatal(err)
			}
			checkpoints++
		case <-clientsDone:
			break churn
		}
	}
	close(stop)
	wg.Wait()
	if p := monitorErr.Load(); p != nil {
		t.Fatal(*p)
	}
	if p := clientErr.Load(); p != nil {
		t.Fatal(*p)
	}
	t.Logf("%d sessions (%d refused), %d echoes, %d bound samples, %d recounts", sessions.Load(), refused.Load(), echoed.Load(), samples.Load(), checkpoints)
	if echoed.Load() == 0 || sessions.Load() < clients*rounds/2 {
		t.Fatalf("too little traffic to prove anything: %d sessions, %d echoes", sessions.Load(), echoed.Load())
	}

	// Quiet: every session ends, leases drop to zero, the pools return to
	// target, and the counters still match a recount.
	testutil.CheckFor(t, 10*time.Second, counter("sessions open", g.Server.Stats().Open.Load, 0))
	for _, b := range g.Pool.Backends() {
		testutil.CheckFor(t, 10*time.Second, func() error {
			if b.Leased.Load() != 0 || b.Releasing.Load() != 0 {
				return fmt.Errorf("backend %d: leased %d releasing %d, want both 0", b.ID, b.Leased.Load(), b.Releasing.Load())
			}
			return nil
		})
		testutil.CheckFor(t, 10*time.Second, func() error {
			if idle := b.Idle.Load(); idle < target {
				return fmt.Errorf("backend %d: idle %d, want at least the target %d", b.ID, idle, target)
			}
			return nil
		})
	}
	if err := recount(g.Pool); err != nil {
		t.Fatal(err)
	}
	gateway.StopBackground(g.Gateway) // no dial in flight now: Total is exactly the sum of the parts
	for _, b := range g.Pool.Backends() {
		if sum := b.Dialing.Load() + b.Idle.Load() + b.Leased.Load() + b.Releasing.Load() + b.Closing.Load(); sum != b.Total.Load() {
			t.Errorf("backend %d: total %d, parts add up to %d", b.ID, b.Total.Load(), sum)
		}
		if b.Leases.Load() == 0 || b.Failures.Load() == 0 || b.Closed.Load() == 0 {
			t.Errorf("backend %d saw no churn: leases %d failures %d closed %d", b.ID, b.Leases.Load(), b.Failures.Load(), b.Closed.Load())
		}
	}
	if err := checkBound(g.Pool); err != nil {
		t.Fatal(err)
	}

	g.Stop()
	for _, b := range g.backends {
		b.Stop()
	}
	for _, b := range g.Pool.Backends() {
		if b.Total.Load() != 0 {
			t.Errorf("backend %d: %d connections left after stop", b.ID, b.Total.Load())
		}
	}
	goleak.VerifyNone(t, testutil.IgnoreGnetWorkers(ignore)...)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if n := testutil.OpenFDs(t); n != fdsBefore {
			return fmt.Errorf("open descriptors: %d before, %d after stop", fdsBefore, n)
		}
		return nil
	})
}
