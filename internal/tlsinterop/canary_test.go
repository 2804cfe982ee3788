package tlsinterop

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
)

// canary is an honest wss:// session that keeps doing round trips, one
// every few milliseconds, while hostile clients attack the same server:
// each scenario requires that it went on working throughout.
type canary struct {
	conn   *websocket.Conn
	rounds atomic.Int64
	slow   atomic.Int64 // the longest round trip so far, ns
	mu     sync.Mutex
	err    error // the first failure; the canary stops at it
	stop   chan struct{}
	done   chan struct{}
}

// canaryRoundTrip bounds one round trip. Not a speed requirement: a
// round trip that takes seconds means the server stopped serving.
const canaryRoundTrip = 3 * time.Second

func startCanary(t testing.TB, addr string, cfg *tls.Config) *canary {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("wss://"+addr+"/canary", nil)
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	c := &canary{conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	t.Cleanup(func() { c.close(t) })
	return c
}

// run is the canary's goroutine: round trips until stopped or failed.
func (c *canary) run() {
	defer close(c.done)
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		start := time.Now()
		msg := fmt.Appendf(nil, "canary %d", i)
		_ = c.conn.SetWriteDeadline(start.Add(canaryRoundTrip))
		_ = c.conn.SetReadDeadline(start.Add(canaryRoundTrip))
		err := c.conn.WriteMessage(websocket.TextMessage, msg)
		var got []byte
		if err == nil {
			_, got, err = c.conn.ReadMessage()
		}
		if err == nil && !bytes.Equal(got, msg) {
			err = fmt.Errorf("echo %q, want %q", got, msg)
		}
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("round trip %d: %w", i, err)
			c.mu.Unlock()
			return
		}
		c.rounds.Add(1)
		if d := int64(time.Since(start)); d > c.slow.Load() {
			c.slow.Store(d)
		}
	}
}

func (c *canary) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// check requires that the canary has not failed and made at least min
// round trips more than from (a count read before the scenario).
func (c *canary) check(t testing.TB, from, min int64) {
	t.Helper()
	testutil.CheckFor(t, 5*time.Second, func() error {
		if err := c.failure(); err != nil {
			return fmt.Errorf("the canary session failed: %w", err)
		}
		if n := c.rounds.Load() - from; n < min {
			return fmt.Errorf("the canary made %d round trips during the scenario, want at least %d", n, min)
		}
		return nil
	})
}

// close stops the canary and ends its session with close 1000.
func (c *canary) close(t testing.TB) {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	<-c.done
	if c.failure() == nil {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_ = c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		if _, _, err := c.conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("canary close: %v", err)
		}
	}
	_ = c.conn.Close()
}

// resources are what a scenario must give back: the process's open
// descriptors and its goroutines, those of gnet's shared worker pool
// (ants) aside. gnet runs every Enroll on that pool, whose idle workers
// live on for seconds after a burst: a fixed pool, not per connection
// (testutil.IgnoreGnetWorkers ignores them the same way).
type resources struct {
	fds        int
	goroutines int    // not counting gnet's pool workers
	all        int    // runtime.NumGoroutine, for the record
	stacks     string // of the counted goroutines
}

func takeResources(t testing.TB) resources {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	r := resources{fds: len(ents), all: runtime.NumGoroutine()}
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var kept []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "github.com/panjf2000/ants/v2.") {
			kept = append(kept, g)
		}
	}
	r.goroutines = len(kept)
	r.stacks = strings.Join(kept, "\n\n")
	return r
}

// goroutineSlack is how many goroutines above the baseline are tolerated
// once a scenario is over: a timer or a runtime helper that comes and
// goes, not one per connection the scenario made.
const goroutineSlack = 2

// waitResources waits until the descriptors are back to base (or below:
// one that belonged to an earlier test may close meanwhile) and the
// goroutines within goroutineSlack of it.
func waitResources(t testing.TB, base resources) {
	t.Helper()
	var last resources
	err := errors.New("not measured")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		last = takeResources(t)
		if last.fds <= base.fds && last.goroutines <= base.goroutines+goroutineSlack {
			return
		}
		err = fmt.Errorf("descriptors %d (baseline %d), goroutines %d (baseline %d; %d with gnet's pool workers)",
			last.fds, base.fds, last.goroutines, base.goroutines, last.all)
		time.Sleep(20 * time.Millisecond)
	}
	if last.goroutines > base.goroutines+goroutineSlack {
		t.Logf("goroutines now:\n%s", last.stacks)
	}
	t.Fatalf("resources not back to baseline after 10 s: %v", err)
}
