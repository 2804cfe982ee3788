package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
	"github.com/wsgate/wsgate/internal/testutil"
)

// The RFC 6455 conformance suite against the echo endpoint, and the
// endpoint-only rules that need the server's own knobs (timers, connection
// limit, shutdown, counters). Every wait is a read with a deadline or a
// poll with a deadline (confCheckFor); nothing sleeps and hopes.

// confTarget describes srv to the conformance suite.
func confTarget(srv *Server) conformance.Target {
	cfg := srv.Config()
	return conformance.Target{
		Addr:            srv.Addr(),
		MaxMessageBytes: cfg.MaxMessageBytes,
		MaxFrameBytes:   cfg.MaxFrameBytes,
		MaxHeaderBytes:  cfg.MaxHeaderBytes,
		CloseTimeout:    cfg.CloseTimeout,
		Subprotocols:    cfg.Subprotocols,
	}
}

// confCheckFor polls cond (testutil.CheckFor) until it holds; past within
// it fails t with what and the last state describe returns.
func confCheckFor(t testing.TB, within time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	testutil.CheckFor(t, within, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("want %s; have %s", what, describe())
	})
}

// confStats renders every counter that is not zero, for failure messages.
func confStats(st *Stats) string {
	var parts []string
	add := func(name string, v int64) {
		if v != 0 {
			parts = append(parts, name+"="+strconv.FormatInt(v, 10))
		}
	}
	add("accepted", st.Accepted.Load())
	add("open", st.Open.Load())
	add("upgraded", st.Upgraded.Load())
	add("sessions", st.Sessions.Load())
	add("framesIn", st.FramesIn())
	add("framesOut", st.FramesOut())
	add("bytesIn", st.BytesIn())
	add("bytesOut", st.BytesOut())
	for _, code := range append(refusalStatuses[:len(refusalStatuses):len(refusalStatuses)], 0) {
		add("refused"+strconv.Itoa(code), st.Refused(code))
	}
	for r := CloseReason(0); r < numCloseReasons; r++ {
		add("closed_"+r.String(), st.Closed(r))
	}
	if len(parts) == 0 {
		return "all counters zero"
	}
	return strings.Join(parts, " ")
}

// confIdle waits until srv has no connection open.
func confIdle(t testing.TB, srv *Server) {
	t.Helper()
	st := srv.Stats()
	confCheckFor(t, 5*time.Second, "no connection open", func() bool {
		return st.Open.Load() == 0 && st.Sessions.Load() == 0
	}, func() string { return confStats(st) })
}

func TestConformance(t *testing.T) {
	t.Parallel()
	configs := []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		{"small_limits", Config{
			MaxMessageBytes: 64 << 10,
			MaxHeaderBytes:  1024,
			CloseTimeout:    time.Second,
			Subprotocols:    []string{"chat.v2", "chat.v1", "superchat"},
		}},
		{"small_frames", Config{MaxMessageBytes: 64 << 10, MaxFrameBytes: 8 << 10}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := startTestServer(t, c.cfg)
			conformance.Run(t, confTarget(srv))
			// Every connection the suite opened has ended, each for a
			// reason of its own: the server closed TCP first everywhere,
			// so none was merely lost.
			confIdle(t, srv)
			st := srv.Stats()
			var ended int64
			for r := CloseReason(0); r < numCloseReasons; r++ {
				ended += st.Closed(r)
			}
			if acc := st.Accepted.Load(); ended != acc {
				t.Errorf("%d connections accepted, %d ended (%s)", acc, ended, confStats(st))
			}
			if !t.Failed() {
				if lost := st.Closed(ReasonConnectionLost); lost != 0 {
					t.Errorf("%d connections ended as lost; the suite always lets the server close first (%s)", lost, confStats(st))
				}
			}
		})
	}
}

// --- endpoint-only rules ------------------------------------------------------

// confNext returns the next frame that is not a ping, answering each ping
// with its pong (a client must, RFC 6455 section 5.5.2), within c's
// timeout.
func confNext(t testing.TB, c *conformance.Client) conformance.Frame {
	t.Helper()
	for {
		f := c.NextFrame()
		if f.Opcode != conformance.OpPing {
			return f
		}
		c.Send(conformance.OpPong, true, f.Payload)
	}
}

// confQuiet reads for d and requires nothing but pings meanwhile, each
// answered with its pong; it returns how many came. A frame split by the
// deadline would be misread, but every frame here is a few bytes long.
func confQuiet(t testing.TB, c *conformance.Client, d time.Duration) (pings int) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return pings
		}
		f, err := c.ReadFrameWithin(left)
		if conformance.IsTimeout(err) {
			return pings
		}
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if err := conformance.CheckServerFrame(f); err != nil {
			t.Fatalf("invalid frame from the server: %v", err)
		}
		if f.Opcode != conformance.OpPing {
			t.Fatalf("got %v while the connection should stay quiet (pings only)", f)
		}
		pings++
		c.Send(conformance.OpPong, true, f.Payload)
	}
}

// confCloseSkippingPings runs the client side of a close handshake on a
// connection that may be pinged at any time.
func confCloseSkippingPings(t testing.TB, c *conformance.Client) {
	t.Helper()
	c.Send(conformance.OpClose, true, conformance.ClosePayload(conformance.CloseNormal, ""))
	for {
		f := c.NextFrame()
		if f.Opcode == conformance.OpPing {
			continue // the close is sent: no pong may follow it
		}
		if code, _, _ := f.CloseCode(); f.Opcode != conformance.OpClose || code != conformance.CloseNormal {
			t.Fatalf("got %v, want the echo of close 1000", f)
		}
		break
	}
	c.ExpectTCPClosed(time.Second)
}

// confWithin requires d to lie in [lo, hi].
func confWithin(t testing.TB, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Errorf("%s after %v, want between %v and %v", what, d.Round(time.Millisecond), lo, hi)
	}
}

// confReadRefusalOrClose reads what a server sends to a connection it cuts
// during the handshake: nothing, or one HTTP response. It returns the
// status (0 for none) once TCP is closed.
func confReadRefusalOrClose(t testing.TB, c *conformance.Client, within time.Duration) int {
	t.Helper()
	c.Timeout = within
	resp, err := c.ReadResponse()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return 0
		}
		t.Fatalf("waiting for the server to close: %v", err)
	}
	c.ExpectTCPClosed(time.Second)
	return resp.Status
}

// confCounter is one expected counter value.
type confCounter struct {
	name string
	got  func() int64
	want int64
}

// confCheckCounters waits until every counter has its value (they are
// written by the loops, possibly just after the client saw the effect),
// then reports each that does not.
func confCheckCounters(t testing.TB, st *Stats, counters []confCounter) {
	t.Helper()
	ok := func() bool {
		for _, c := range counters {
			if c.got() != c.want {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(3 * time.Second)
	for !ok() && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	for _, c := range counters {
		if got := c.got(); got != c.want {
			t.Errorf("Stats %s = %d, want %d", c.name, got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("all counters: %s", confStats(st))
	}
}

func closedCounter(st *Stats, r CloseReason, want int64) confCounter {
	return confCounter{"Closed(" + r.String() + ")", func() int64 { return st.Closed(r) }, want}
}

func refusedCounter(st *Stats, status int, want int64) confCounter {
	return confCounter{"Refused(" + strconv.Itoa(status) + ")", func() int64 { return st.Refused(status) }, want}
}

// TestEndpointTimers: the handshake timeout and the idle ping. Not parallel
// with other tests, so the timing bounds hold on a busy machine.
func TestEndpointTimers(t *testing.T) {
	const (
		tick      = 20 * time.Millisecond
		handshake = 300 * time.Millisecond
		pingEvery = 200 * time.Millisecond
		pongWait  = 300 * time.Millisecond
		slack     = 700 * time.Millisecond // scheduling under -race
	)
	srv := startTestServer(t, Config{HandshakeTimeout: handshake, TickInterval: tick, PingInterval: pingEvery, PongTimeout: pongWait})
	addr := srv.Addr()
	open := func(t *testing.T) *conformance.Client {
		c := conformance.Dial(t, addr, 5*time.Second)
		c.Handshake(conformance.NewRequest(addr, "/"))
		return c
	}
	var mu sync.Mutex
	var got408, handshakeTimeouts int64
	t.Run("timers", func(t *testing.T) {
		t.Run("handshake_half_request_408_then_closed", func(t *testing.T) {
			t.Parallel()
			c := conformance.Dial(t, addr, 5*time.Second)
			start := time.Now()
			req := conformance.NewRequest(addr, "/").Bytes()
			c.Write(req[:len(req)/2])
			mu.Lock()
			handshakeTimeouts++
			mu.Unlock()
			resp, err := c.ReadResponse()
			if err != nil {
				t.Fatalf("want HTTP 408: %v", err)
			}
			mu.Lock()
			if resp.Status == 408 {
				got408++
			}
			mu.Unlock()
			if resp.Status != 408 {
				t.Fatalf("status %d, want 408 (%v)", resp.Status, resp)
			}
			confWithin(t, "408", time.Since(start), handshake-2*tick, handshake+slack)
			c.ExpectTCPClosed(time.Second)
		})
		t.Run("handshake_nothing_sent_closed", func(t *testing.T) {
			t.Parallel()
			c := conformance.Dial(t, addr, 5*time.Second)
			start := time.Now()
			mu.Lock()
			handshakeTimeouts++
			mu.Unlock()
			status := confReadRefusalOrClose(t, c, 5*time.Second)
			if status != 0 && status != 408 {
				t.Fatalf("HTTP %d to a client that sent nothing; want nothing or 408", status)
			}
			mu.Lock()
			if status == 408 {
				got408++
			}
			mu.Unlock()
			confWithin(t, "TCP close", time.Since(start), handshake-2*tick, handshake+slack)
		})
		t.Run("handshake_completed_in_time_timer_off", func(t *testing.T) {
			t.Parallel()
			c := conformance.Dial(t, addr, 5*time.Second)
			req := conformance.NewRequest(addr, "/")
			b := req.Bytes()
			third := len(b) / 3
			c.Write(b[:third])
			// Each pause is a read that must time out: the server may
			// neither answer nor close before the request is complete.
			for _, part := range [][]byte{b[third : 2*third], b[2*third:]} {
				var one [1]byte
				_ = c.Conn.SetReadDeadline(time.Now().Add(handshake / 6))
				if n, err := c.Conn.Read(one[:]); n > 0 || !conformance.IsTimeout(err) {
					t.Fatalf("server answered an incomplete request (n=%d, err=%v)", n, err)
				}
				c.Write(part)
			}
			c.ExpectUpgrade(req)
			// Past the handshake deadline the session stays up (pings only).
			confQuiet(t, c, handshake+4*tick)
			c.Send(conformance.OpText, true, []byte("still here"))
			if f := confNext(t, c); f.Opcode != conformance.OpText || string(f.Payload) != "still here" {
				t.Fatalf("got %v, want the echo", f)
			}
			confCloseSkippingPings(t, c)
		})
		t.Run("idle_ping_answered_stays_open", func(t *testing.T) {
			t.Parallel()
			c := open(t)
			start := time.Now()
			f, err := c.ReadFrameWithin(pingEvery + slack)
			if err != nil {
				t.Fatalf("want a ping after %v of silence: %v", pingEvery, err)
			}
			if f.Opcode != conformance.OpPing {
				t.Fatalf("got %v, want a ping", f)
			}
			confWithin(t, "first ping", time.Since(start), pingEvery-2*tick, pingEvery+slack)
			c.Send(conformance.OpPong, true, f.Payload)
			// Answering keeps it open well past the pong timeout; the
			// server keeps pinging the idle client.
			if n := confQuiet(t, c, pongWait+pingEvery+4*tick); n < 1 {
				t.Errorf("no further ping in %v of silence", pongWait+pingEvery+4*tick)
			}
			c.Send(conformance.OpText, true, []byte("alive"))
			if f := confNext(t, c); f.Opcode != conformance.OpText || string(f.Payload) != "alive" {
				t.Fatalf("got %v, want the echo", f)
			}
			confCloseSkippingPings(t, c)
		})
		t.Run("idle_ping_unanswered_1001_then_closed", func(t *testing.T) {
			t.Parallel()
			c := open(t)
			f, err := c.ReadFrameWithin(pingEvery + slack)
			if err != nil || f.Opcode != conformance.OpPing {
				t.Fatalf("want a ping after %v of silence: %v %v", pingEvery, f, err)
			}
			pinged := time.Now()
			c.ExpectClose(conformance.CloseGoingAway)
			confWithin(t, "close 1001", time.Since(pinged), pongWait-2*tick, pongWait+slack)
			c.ExpectTCPClosed(time.Second)
		})
		t.Run("busy_client_not_pinged", func(t *testing.T) {
			t.Parallel()
			c := open(t)
			// Traffic every ~pingEvery/4 for over two ping intervals.
			for i := 0; i < 9; i++ {
				c.Send(conformance.OpBinary, true, []byte{byte(i)})
				c.ExpectMessage(conformance.OpBinary, []byte{byte(i)})
				if f, err := c.ReadFrameWithin(pingEvery / 4); !conformance.IsTimeout(err) {
					t.Fatalf("an active client got %v (err %v); pings are for idle ones", f, err)
				}
			}
			c.CloseHandshake(time.Second)
		})
	})
	confIdle(t, srv)
	st := srv.Stats()
	confCheckCounters(t, st, []confCounter{
		closedCounter(st, ReasonHandshakeTimeout, handshakeTimeouts),
		refusedCounter(st, 408, got408),
		closedCounter(st, ReasonPingTimeout, 1),
		closedCounter(st, ReasonClientClose, 3),
		{"Upgraded", st.Upgraded.Load, 4},
	})
}

// TestEndpointShutdown: Shutdown sends 1001 to open sessions, cuts those
// still handshaking, refuses new ones with 503, and closes TCP of a client
// that never answers its 1001 after the close timeout.
func TestEndpointShutdown(t *testing.T) {
	const (
		tick         = 20 * time.Millisecond
		closeTimeout = 800 * time.Millisecond
	)
	srv := startTestServer(t, Config{CloseTimeout: closeTimeout, TickInterval: tick})
	addr := srv.Addr()
	st := srv.Stats()
	answering := conformance.Dial(t, addr, 5*time.Second)
	answering.Handshake(conformance.NewRequest(addr, "/"))
	silent := conformance.Dial(t, addr, 5*time.Second)
	silent.Handshake(conformance.NewRequest(addr, "/"))
	handshaking := conformance.Dial(t, addr, 5*time.Second)
	half := conformance.NewRequest(addr, "/").Bytes()
	handshaking.Write(half[:20])
	confCheckFor(t, 5*time.Second, "3 connections open, 2 upgraded", func() bool {
		return st.Open.Load() == 3 && st.Sessions.Load() == 2
	}, func() string { return confStats(st) })

	start := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()

	// Both upgraded clients get 1001; the one that answers is closed at once.
	answering.ExpectClose(conformance.CloseGoingAway)
	silent.ExpectClose(conformance.CloseGoingAway)
	answering.Send(conformance.OpClose, true, conformance.ClosePayload(conformance.CloseGoingAway, ""))
	answering.ExpectTCPClosed(closeTimeout / 2)

	// While draining, the listener is closed: a new client is refused at
	// connect.
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = nc.Close()
		t.Errorf("a new connection was accepted while shutting down")
	}

	// The connection still handshaking is cut (a 503 at most).
	if status := confReadRefusalOrClose(t, handshaking, 2*time.Second); status != 0 && status != 503 {
		t.Errorf("handshaking client got HTTP %d at shutdown; want nothing or 503", status)
	}

	// The silent client is cut after the close timeout, not before.
	silent.ExpectTCPClosed(closeTimeout + 2*time.Second)
	confWithin(t, "TCP close of the client that never answered 1001", time.Since(start), closeTimeout-2*tick, closeTimeout+time.Second)

	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	confCheckCounters(t, st, []confCounter{
		{"Open", st.Open.Load, 0},
		{"Sessions", st.Sessions.Load, 0},
		// Every one of them ended for the shutdown, the silent one through
		// the close timeout.
		closedCounter(st, ReasonShutdown, 3),
		{"CloseTimeouts", st.CloseTimeouts.Load, 1},
	})
}

// TestEndpointMaxConns: a connection past MaxConns is refused as soon as it
// is accepted (a 503 if the client reads it before its own request meets
// the closed socket, else just the close), without waiting for its request
// or the handshake timeout; a freed slot is usable again. (Hardening
// issue, defect 2: over-limit connections were held until their request
// arrived or the handshake timeout.)
func TestEndpointMaxConns(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, Config{MaxConns: 2})
	addr := srv.Addr()
	st := srv.Stats()
	open := func() *conformance.Client {
		c := conformance.Dial(t, addr, 5*time.Second)
		c.Handshake(conformance.NewRequest(addr, "/"))
		return c
	}
	c1, c2 := open(), open()
	third := conformance.Dial(t, addr, 5*time.Second) // sends nothing, so it reads the whole answer
	if status := confReadRefusalOrClose(t, third, 2*time.Second); status != 503 {
		t.Fatalf("over-limit connection got HTTP %d; want 503", status)
	}
	confCheckCounters(t, st, []confCounter{refusedCounter(st, 503, 1), closedCounter(st, ReasonOverCapacity, 1),
		{"Open", st.Open.Load, 2}})

	// One leaves: the next client gets in.
	c1.CloseHandshake(time.Second)
	confCheckFor(t, 5*time.Second, "one connection open", func() bool { return st.Open.Load() == 1 },
		func() string { return confStats(st) })
	c3 := open()
	c2.CloseHandshake(time.Second)
	c3.CloseHandshake(time.Second)
	confIdle(t, srv)
	confCheckCounters(t, st, []confCounter{
		refusedCounter(st, 503, 1),
		{"Accepted", st.Accepted.Load, 4},
		{"Upgraded", st.Upgraded.Load, 3},
		closedCounter(st, ReasonClientClose, 3),
		closedCounter(st, ReasonOverCapacity, 1),
	})
}

// confTally counts what clients sent that the server took in and what
// they received, to compare with the server's counters.
type confTally struct {
	framesIn, bytesIn, framesOut, bytesOut int64
	controlBytesOut                        int64 // part of bytesOut in pongs and close frames
}

// sent records a frame the server receives whole (header accepted).
func (k *confTally) sent(payload []byte) { k.framesIn++; k.bytesIn += int64(len(payload)) }

// got records a frame a client received.
func (k *confTally) got(f conformance.Frame) conformance.Frame {
	k.framesOut++
	k.bytesOut += int64(len(f.Payload))
	if f.Opcode.IsControl() {
		k.controlBytesOut += int64(len(f.Payload))
	}
	return f
}

// TestEndpointStats: the counters equal the traffic the test made. Frames
// refused from their header (unmasked, too large) never count as received;
// every frame a client receives counts as sent, with its payload bytes
// (close and pong payloads included: Stats documents BytesOut as "payload
// bytes written to clients", as BytesIn counts ping and close payloads).
func TestEndpointStats(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, Config{MaxHeaderBytes: 1024})
	addr := srv.Addr()
	st := srv.Stats()
	var k confTally
	open := func() *conformance.Client {
		c := conformance.Dial(t, addr, 5*time.Second)
		c.Handshake(conformance.NewRequest(addr, "/"))
		return c
	}
	send := func(c *conformance.Client, op conformance.Opcode, p []byte) {
		c.Send(op, true, p)
		k.sent(p)
	}
	next := func(c *conformance.Client) conformance.Frame { return k.got(c.NextFrame()) }

	// A session that echoes, pings and closes cleanly.
	c := open()
	send(c, conformance.OpText, []byte("hello"))
	if f := next(c); string(f.Payload) != "hello" {
		t.Fatalf("echo: %v", f)
	}
	send(c, conformance.OpPing, []byte("p"))
	if f := next(c); f.Opcode != conformance.OpPong {
		t.Fatalf("want pong: %v", f)
	}
	send(c, conformance.OpBinary, conformance.BinaryPayload(300))
	if f := next(c); len(f.Payload) != 300 {
		t.Fatalf("echo: %v", f)
	}
	send(c, conformance.OpClose, conformance.ClosePayload(conformance.CloseNormal, "bye"))
	if f := next(c); f.Opcode != conformance.OpClose {
		t.Fatalf("want close: %v", f)
	}
	c.ExpectTCPClosed(time.Second)

	// Protocol error after one echo: the unmasked frame is refused from
	// its header.
	c = open()
	send(c, conformance.OpText, []byte("x"))
	next(c)
	c.WriteFrame(conformance.OpText, true, 0, false, []byte("bad"))
	if code, _, _ := next(c).CloseCode(); code != conformance.CloseProtocolError {
		t.Fatalf("close %d, want 1002", code)
	}
	c.ExpectTCPClosed(time.Second)

	// Invalid UTF-8: refused as soon as its bad byte arrives, so the frame
	// never counts as received.
	c = open()
	c.Send(conformance.OpText, true, []byte("\xff"))
	if code, _, _ := next(c).CloseCode(); code != conformance.CloseInvalidPayload {
		t.Fatalf("close %d, want 1007", code)
	}
	c.ExpectTCPClosed(time.Second)

	// A frame too large, refused from its header.
	c = open()
	c.Write(conformance.AppendHeader(nil, conformance.OpBinary, true, 0, true, conformance.RandomMask(), 1<<40))
	if code, _, _ := next(c).CloseCode(); code != conformance.CloseMessageTooBig {
		t.Fatalf("close %d, want 1009", code)
	}
	c.ExpectTCPClosed(time.Second)

	// A session the client drops without a close handshake.
	c = open()
	send(c, conformance.OpBinary, []byte{1, 2, 3})
	next(c)
	c.Close()

	// Refused handshakes.
	refusals := []struct {
		status int
		req    *conformance.Request
	}{
		{405, func() *conformance.Request { r := conformance.NewRequest(addr, "/"); r.Method = "POST"; return r }()},
		{426, conformance.NewRequest(addr, "/").Set("Sec-WebSocket-Version", "8")},
		{400, conformance.NewRequest(addr, "/").Set("Sec-WebSocket-Key", "short")},
		{431, conformance.NewRequest(addr, "/").PadTo(2000)},
	}
	for _, r := range refusals {
		rc := conformance.Dial(t, addr, 5*time.Second)
		rc.Write(r.req.Bytes())
		rc.ExpectRefusal(r.status, time.Second)
	}

	confIdle(t, srv)
	confCheckCounters(t, st, []confCounter{
		{"Accepted", st.Accepted.Load, 9},
		{"Upgraded", st.Upgraded.Load, 5},
		{"Open", st.Open.Load, 0},
		{"Sessions", st.Sessions.Load, 0},
		refusedCounter(st, 405, 1),
		refusedCounter(st, 426, 1),
		refusedCounter(st, 400, 1),
		refusedCounter(st, 431, 1),
		refusedCounter(st, 503, 0),
		closedCounter(st, ReasonClientClose, 1),
		closedCounter(st, ReasonProtocolError, 1),
		closedCounter(st, ReasonInvalidPayload, 1),
		closedCounter(st, ReasonMessageTooBig, 1),
		closedCounter(st, ReasonConnectionLost, 1),
		closedCounter(st, ReasonHandshakeRefused, 4),
		{"FramesIn", st.FramesIn, k.framesIn},
		{"BytesIn", st.BytesIn, k.bytesIn},
		{"FramesOut", st.FramesOut, k.framesOut},
		{fmt.Sprintf("BytesOut (data %d + pong and close payloads %d)", k.bytesOut-k.controlBytesOut, k.controlBytesOut),
			st.BytesOut, k.bytesOut},
	})
}
