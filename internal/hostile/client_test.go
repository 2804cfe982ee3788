package hostile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
)

// TestHostileClient: clients that flood, never read, open too many
// connections, abandon handshakes or send garbage.
func TestHostileClient(t *testing.T) {
	t.Run("ping_flood_unread", testClientPingFlood)
	t.Run("data_flood_unread", testClientDataFlood)
	t.Run("connection_flood", func(t *testing.T) {
		t.Run("max_conns_50", func(t *testing.T) { testConnectionFlood(t, 50) })
		t.Run("default_max_conns", func(t *testing.T) { testConnectionFlood(t, 0) })
	})
	t.Run("abandoned_handshakes", testAbandonedHandshakes)
	t.Run("garbage_after_upgrade", testGarbageAfterUpgrade)
}

// TestHostileControl runs the harness with honest peers only: every check
// must pass, or the harness itself is broken.
func TestHostileControl(t *testing.T) {
	h := newHarness(t)
	twin := h.peer("twin", honest())
	startEvil(h, twin, "")
	res := &churnResult{}
	churn(h, 4, 25, res, func(id string, rng *rand.Rand) error {
		path := "/"
		if rng.IntN(2) == 0 {
			path = "/evil/"
		}
		s, err := openSession(h.gw.addr, path, id, dialOpts{})
		if err != nil {
			return err
		}
		defer s.close()
		for k := range 3 {
			if err := s.roundTrip(fmt.Sprintf("rt:%d", k), roundTripWithin); err != nil {
				return err
			}
		}
		return s.closeSession()
	})
	res.report(t)
	h.finish()
}

// floodClient writes chunk over and over for floodFor on c (a client that
// never reads). It reports whether a write made no progress for a second
// (the gateway stopped reading) and whether the connection broke.
func floodClient(h *harness, c *wsClient, chunk []byte) (stalled, broke bool, sent int64) {
	end := time.Now().Add(floodFor)
	for time.Now().Before(end) && !h.stopped() {
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := c.conn.Write(chunk)
		sent += int64(n)
		switch {
		case isTimeout(err):
			stalled = true
		case err != nil:
			return stalled, true, sent
		}
	}
	return stalled, false, sent
}

// expectFloodStopped requires the gateway to have stopped reading the
// flooding client, or to have closed its session.
func expectFloodStopped(t *testing.T, h *harness, c *wsClient, stalled, broke bool, sent int64) {
	t.Helper()
	closed, code, got, err := drainClient(h, c)
	if err != nil {
		t.Errorf("reading what the gateway queued for the flooding client: %v", err)
	}
	t.Logf("the client sent %s; the gateway: paused reading=%v, connection broken=%v; reading again, the client got %s then closed=%v (code %d)",
		mib(sent), stalled, broke, mib(got), closed, code)
	if !stalled && !broke && !closed {
		t.Errorf("the gateway neither closed the flooding session nor stopped reading it")
	}
}

// testClientPingFlood: a client sends 125-byte pings as fast as it can
// and never reads (4 KiB receive buffer), so every pong the gateway owes
// it piles up.
func testClientPingFlood(t *testing.T) {
	h := newHarness(t)
	h.start(gwOpts{config: twoGroups(h, nil, "")})
	c, err := dialWS(h.gw.addr, "/", dialOpts{rcvBuf: 4096})
	if err != nil {
		t.Fatal(err)
	}
	h.onStop(c.close)
	payload := bytes.Repeat([]byte{'p'}, 125)
	var batch []byte
	for range 256 {
		batch = conformance.AppendFrame(batch, opPing, true, 0, true, payload)
	}
	stalled, broke, sent := floodClient(h, c, batch)
	expectFloodStopped(t, h, c, stalled, broke, sent)
	c.close()
	h.finish()
}

// testClientDataFlood: a client sends 16 KiB messages as fast as it can
// and never reads the echoes.
func testClientDataFlood(t *testing.T) {
	h := newHarness(t)
	h.start(gwOpts{config: twoGroups(h, nil, "")})
	c, err := dialWS(h.gw.addr, "/", dialOpts{rcvBuf: 4096})
	if err != nil {
		t.Fatal(err)
	}
	h.onStop(c.close)
	msg := append([]byte("rt:"), bytes.Repeat([]byte{'d'}, 16<<10)...)
	var batch []byte
	for range 4 {
		batch = conformance.AppendFrame(batch, opBinary, true, 0, true, msg)
	}
	stalled, broke, sent := floodClient(h, c, batch)
	expectFloodStopped(t, h, c, stalled, broke, sent)
	c.close()
	h.finish()
}

// floodNofile is the gateway's descriptor limit in the connection flood.
const floodNofile = 256

// testConnectionFlood: under a descriptor limit of 256, 1,000 TCP
// connections as fast as possible, half silent, half with a full upgrade
// request. maxConns 0 leaves -max-conns at its default.
func testConnectionFlood(t *testing.T, maxConns int) {
	h := newHarness(t)
	var args []string
	if maxConns > 0 {
		args = append(args, "-max-conns", fmt.Sprint(maxConns))
	}
	h.start(gwOpts{config: twoGroups(h, nil, ""), args: args, nofile: floodNofile})
	limit := maxConns
	if limit == 0 {
		limit = loggedMaxConns(h.gw)
	}
	t.Logf("descriptor limit %d, connection limit %d", floodNofile, limit)

	const total = 1000
	const answerWithin = 3 * time.Second
	outcomes := make([]string, total)
	var readers sync.WaitGroup
	var dialers sync.WaitGroup
	next := make(chan int)
	for range 16 {
		dialers.Go(func() {
			for i := range next {
				c, err := net.DialTimeout("tcp", h.gw.addr, answerWithin)
				if err != nil {
					outcomes[i] = "dial failed"
					continue
				}
				h.onStop(func() { _ = c.Close() })
				readers.Go(func() { outcomes[i] = floodOne(h.gw.addr, c, i, i%2 == 1, answerWithin) })
			}
		})
	}
	for i := 0; i < total && !h.stopped(); i++ {
		next <- i
	}
	close(next)
	dialers.Wait()
	readers.Wait()

	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o]++
	}
	t.Logf("outcomes of %d connections: %v", total, counts)
	if err := retry(3*time.Second, h.gw.healthz); err != nil {
		t.Errorf("/healthz during the flood (%d connections open): %v", total, err)
	}
	if held := counts["upgraded"] + counts["no answer"]; held > limit {
		t.Errorf("%d connections were upgraded or left unanswered for %v, more than the limit of %d: "+
			"connections over the limit must get 503 or be closed promptly (no answer: %d)", held, answerWithin, limit, counts["no answer"])
	}
	if counts["upgraded"] == 0 {
		t.Errorf("no connection of the flood was upgraded: the gateway stopped serving")
	}
	h.finish()
	if t.Failed() { // the log is flushed every second: finish took longer
		for _, l := range h.gw.log.grep(5, "open files", "engine", "reactor") {
			t.Logf("gateway log: %s", l)
		}
	}
}

// floodOne classifies what the gateway did within d with connection i of
// the flood, which sends an upgrade request or nothing: "upgraded", "503",
// "HTTP <status>", "closed" (EOF or reset), or "no answer". Connections
// not upgraded are closed; the others stay open until the attack stops.
func floodOne(addr string, c net.Conn, i int, upgrade bool, d time.Duration) string {
	_ = c.SetDeadline(time.Now().Add(d))
	if upgrade {
		if _, err := c.Write(upgradeRequest(addr, fmt.Sprintf("/flood-%d", i))); err != nil {
			_ = c.Close()
			return "closed"
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	switch {
	case err == nil:
	case isTimeout(err):
		return "no answer"
	default:
		_ = c.Close()
		return "closed"
	}
	var status int
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
		_ = c.Close()
		return fmt.Sprintf("garbage %q", truncate([]byte(line), 20))
	}
	if status == 101 {
		return "upgraded"
	}
	_ = c.Close()
	return fmt.Sprintf("HTTP %d", status)
}

// loggedMaxConns reads the connection limit the gateway logged at start
// (the "listening" line's max_conns field). If it logged none, the
// descriptor limit stands in: no more connections than that can be held.
func loggedMaxConns(g *gateway) int {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// The gateway's log is buffered (flushed every second).
		for _, l := range strings.Split(g.log.head(), "\n") {
			var rec struct {
				MaxConns int `json:"max_conns"`
			}
			if json.Unmarshal([]byte(l), &rec) == nil && rec.MaxConns > 0 {
				return rec.MaxConns
			}
		}
	}
	g.t.Logf("the gateway logged no max_conns at start; using the descriptor limit %d as the bound", floodNofile)
	return floodNofile
}

// testAbandonedHandshakes: 200 clients send half an upgrade request and go
// silent; with -handshake-timeout 1s each must be closed (or answered 408)
// soon after the timeout.
func testAbandonedHandshakes(t *testing.T) {
	h := newHarness(t)
	const timeout = time.Second
	h.start(gwOpts{config: twoGroups(h, nil, ""), args: []string{"-handshake-timeout", timeout.String()}})
	const n = 200
	const within = timeout + 4*time.Second
	half := []byte("GET /abandoned HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upg")
	type result struct {
		outcome string
		after   time.Duration
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", h.gw.addr, 5*time.Second)
			if err != nil {
				results[i] = result{outcome: "dial failed: " + err.Error()}
				return
			}
			h.onStop(func() { _ = c.Close() })
			defer c.Close()
			start := time.Now()
			if _, err := c.Write(half); err != nil {
				results[i] = result{outcome: "write failed: " + err.Error()}
				return
			}
			_ = c.SetReadDeadline(start.Add(within))
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				switch {
				case err == nil:
					if strings.HasPrefix(line, "HTTP/1.1 ") && results[i].outcome == "" {
						results[i].outcome = strings.TrimSpace(line)
					}
					continue
				case isTimeout(err):
					results[i] = result{outcome: "still open", after: time.Since(start)}
				case peerClosed(err), errors.Is(err, syscall.ECONNRESET):
					if results[i].outcome == "" {
						results[i].outcome = "closed"
					}
					results[i].after = time.Since(start)
				default:
					results[i] = result{outcome: "read: " + err.Error(), after: time.Since(start)}
				}
				return
			}
		})
	}
	wg.Wait()
	counts := map[string]int{}
	var slowest time.Duration
	for _, r := range results {
		counts[r.outcome]++
		slowest = max(slowest, r.after)
	}
	t.Logf("%d abandoned handshakes: %v; the last one ended after %v", n, counts, slowest.Round(time.Millisecond))
	if open := counts["still open"]; open > 0 {
		t.Errorf("%d of %d abandoned handshakes still open %v after their half request (handshake timeout %v)", open, n, within, timeout)
	}
	for o, k := range counts {
		if o != "still open" && o != "closed" && !strings.HasPrefix(o, "HTTP/1.1 408") {
			t.Errorf("%d abandoned handshakes ended with %q (want the connection closed, or 408)", k, o)
		}
	}
	h.finish()
}

// testGarbageAfterUpgrade: random bytes right after a valid upgrade, in
// the request's own write or after the 101, and in some sessions after
// the first fragment of a text message (so the backend connection is left
// mid-message). The first garbage byte has RSV bits set, so the garbage
// is a protocol error whatever follows: the client must get close 1002
// (or the end of TCP), and the backend connection the session held (the
// backend's pool holds one) must not be poisoned: the next sessions on
// that backend work and it never sees a byte of the garbage nor a
// message interleaved with an unfinished one.
func testGarbageAfterUpgrade(t *testing.T) {
	h := newHarness(t)
	target := h.peer("target", honest())
	h.start(gwOpts{config: twoGroups(h, map[*peerServer]string{target: "pool_target: 1"}, "")}, poolWait{target, 1})
	rng := rand.New(rand.NewPCG(11, 6455))
	for i := range 20 {
		garbage := make([]byte, 256)
		for j := range garbage {
			garbage[j] = byte(rng.Uint32())
		}
		garbage[0] |= 0x70 // RSV1-3: no extension is negotiated
		var c *wsClient
		var err error
		id := fmt.Sprintf("garbage-%d", i)
		if i%2 == 0 {
			c, err = dialWS(h.gw.addr, "/evil/", dialOpts{pipeline: garbage})
		} else {
			var s *session
			if s, err = openSession(h.gw.addr, "/evil/", id, dialOpts{}); err == nil {
				c = s.wsClient
				if i%4 == 3 { // leave the backend mid-message
					garbage = append(conformance.AppendFrame(nil, opText, false, 0, true, []byte("rt:first fragment ")), garbage...)
				}
				_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, err = c.conn.Write(garbage)
			}
		}
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		h.onStop(c.close)
		for {
			f, err := c.readFrame(5 * time.Second)
			if err != nil {
				if !peerClosed(err) {
					t.Errorf("%s: waiting for close 1002: %v", id, err)
				}
				break
			}
			if f.Opcode == opClose {
				if code, _, _ := f.CloseCode(); code != conformance.CloseProtocolError {
					t.Errorf("%s: got %v, want close 1002", id, f)
				}
				break
			}
			if f.Opcode != opPing && f.Opcode != opPong {
				t.Errorf("%s: got %v before the close", id, f)
			}
		}
		c.close()
	}
	for i := range 10 {
		s, err := openSession(h.gw.addr, "/evil/", fmt.Sprintf("after-garbage-%d", i), dialOpts{})
		if err == nil {
			err = s.roundTrip("rt:1", roundTripWithin)
			if cerr := s.closeSession(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Errorf("session %d after the garbage, on the same backend: %v", i, err)
		}
	}
	h.finish()
}
