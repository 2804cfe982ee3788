package hostile

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
)

// TestHostileBackend: backends that break the protocol, flood, hang, or
// keep talking after their session ended.
func TestHostileBackend(t *testing.T) {
	t.Run("overflowing_header", func(t *testing.T) {
		t.Run("after_handshake", testOverflowAfterHandshake)
		t.Run("idle", testOverflowIdle)
		t.Run("leased", testOverflowLeased)
	})
	t.Run("oversized_frame", func(t *testing.T) {
		t.Run("endless_8GiB", testOversizedEndless)
		t.Run("just_over_limit", testOversizedJustOver)
	})
	t.Run("endless_frames_unread_client", testEndlessFramesUnreadClient)
	t.Run("ping_flood", func(t *testing.T) {
		t.Run("unread_leased", testPingFloodUnreadLeased)
		t.Run("unread_idle", testPingFloodUnreadIdle)
		t.Run("idle", testPingFloodIdleRead)
	})
	t.Run("hung_upgrade", testHungUpgrade)
	t.Run("pause_mid_fragment", func(t *testing.T) {
		t.Run("default", func(t *testing.T) { testPauseMidFragment(t, "") })
		t.Run("reset", func(t *testing.T) { testPauseMidFragment(t, "release_policy: reset") })
	})
	t.Run("late_frames", func(t *testing.T) {
		t.Run("default", func(t *testing.T) { testLateFrames(t, "") })
		// A quiet drain keeps late frames from the next session only if
		// they come within its quiet period (README): here the period
		// covers the backend's 100-500 ms.
		t.Run("reset", func(t *testing.T) { testLateFrames(t, "release_policy: reset, reset_quiet: 1s") })
	})
}

// overflowHeader is a binary frame header declaring 2^63-1 payload bytes
// (0x82 0x7F 0x7F 0xFF ... 0xFF): the largest length RFC 6455 allows.
var overflowHeader = conformance.AppendHeader(nil, opBinary, true, 0, false, [4]byte{}, 1<<63-1)

// evilPool is the pool target of the evil backends.
const evilPool = 2

// startEvil starts the harness with one evil backend in group "evil"
// (route /evil/), settings as YAML flow-map entries, and waits for its pool.
func startEvil(h *harness, evil *peerServer, settings string, args ...string) {
	h.t.Helper()
	line := fmt.Sprintf("pool_target: %d", evilPool)
	if settings != "" {
		line += ", " + settings
	}
	h.start(gwOpts{config: twoGroups(h, map[*peerServer]string{evil: line}, ""), args: args}, poolWait{evil, evilPool})
}

// overflowAttack sends overflowHeader on an upgraded connection, then
// reads until the gateway ends it.
func overflowAttack(pc *peerConn) {
	pc.markAttacked()
	if pc.write(overflowHeader, 5*time.Second) == nil {
		pc.drain()
	}
}

// testOverflowAfterHandshake: every new connection gets the header in the
// same write as its 101, so it reaches the gateway during or right after
// its dial.
func testOverflowAfterHandshake(t *testing.T) {
	h := newHarness(t)
	evil := h.peer("evil", honest())
	startEvil(h, evil, "")
	evil.set(func(pc *peerConn) {
		if pc.upgrade(overflowHeader) != nil {
			return
		}
		pc.markAttacked()
		pc.drain()
	})
	evil.dropAll() // the gateway dials replacements, which are attacked
	h.waitFor(3*time.Second, func() bool { return len(evil.attackedConns()) >= 3 })
	h.sleep(500 * time.Millisecond)
	evil.set(honest())
	h.expectClosedByGateway(evil, 3*time.Second)
	h.finish()
}

// testOverflowIdle: the pooled connections, idle, get the header.
func testOverflowIdle(t *testing.T) {
	h := newHarness(t)
	trigger := make(chan struct{})
	evil := h.peer("evil", armed(trigger, overflowAttack))
	startEvil(h, evil, "")
	h.fire(evil, trigger)
	h.expectClosedByGateway(evil, 3*time.Second)
	h.finish()
}

// attackOnCommand is a tag echo whose connection runs attack when a
// session sends "cmd:attack"; the echo loop goes on reading afterwards
// (so it sees the gateway's close frame).
func attackOnCommand(attack func(pc *peerConn, tag string)) behavior {
	return tagEcho(echoHooks{onMessage: func(pc *peerConn, tag string, msg []byte) bool {
		if string(msg) != "cmd:attack" {
			return false
		}
		pc.markAttacked()
		attack(pc, tag)
		return true
	}})
}

// expectSessionEnds requires the gateway to end s (close frame or end of
// TCP) within d, sending it nothing else of consequence.
func expectSessionEnds(t *testing.T, s *session, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := s.next(time.Until(deadline))
		var ce *closedError
		switch {
		case errors.As(err, &ce):
			t.Logf("the victim session ended: %v", ce)
			return
		case isTimeout(err):
			t.Errorf("the session whose backend misbehaved is still open %v later", d)
			return
		case err != nil:
			t.Errorf("the session whose backend misbehaved: %v", err)
			return
		}
		t.Logf("the victim session received %v", f)
	}
}

// testOverflowLeased: the connection bound to a session sends the header.
func testOverflowLeased(t *testing.T) {
	h := newHarness(t)
	evil := h.peer("evil", attackOnCommand(func(pc *peerConn, _ string) {
		_ = pc.write(overflowHeader, 5*time.Second)
	}))
	startEvil(h, evil, "")
	s, err := openSession(h.gw.addr, "/evil/", "victim", dialOpts{})
	if err != nil {
		t.Fatalf("session on the evil backend: %v", err)
	}
	h.onStop(s.close)
	if err := s.send(opText, true, []byte("cmd:attack")); err != nil {
		t.Fatal(err)
	}
	expectSessionEnds(t, s, 3*time.Second)
	h.expectClosedByGateway(evil, 3*time.Second)
	h.finish()
}

// testOversizedEndless: bound to a session, the backend declares an 8 GiB
// frame and streams bytes as fast as it can for 3 s.
func testOversizedEndless(t *testing.T) {
	h := newHarness(t)
	chunk := make([]byte, 64<<10)
	evil := h.peer("evil", attackOnCommand(func(pc *peerConn, _ string) {
		hdr := conformance.AppendHeader(nil, opBinary, true, 0, false, [4]byte{}, 8<<30)
		if pc.write(hdr, 5*time.Second) != nil {
			return
		}
		pc.spawn(func() { pc.flood(h.ctx, chunk, 3*time.Second) })
	}))
	startEvil(h, evil, "")
	s, err := openSession(h.gw.addr, "/evil/", "victim", dialOpts{})
	if err != nil {
		t.Fatalf("session on the evil backend: %v", err)
	}
	h.onStop(s.close)
	if err := s.send(opText, true, []byte("cmd:attack")); err != nil {
		t.Fatal(err)
	}
	expectSessionEnds(t, s, 3*time.Second)
	h.expectClosedByGateway(evil, 3*time.Second)
	h.finish()
}

// testOversizedJustOver: the backend declares one byte more than the
// default message limit (1 MiB) and sends nothing more: the gateway must
// refuse it from the header alone.
func testOversizedJustOver(t *testing.T) {
	h := newHarness(t)
	evil := h.peer("evil", attackOnCommand(func(pc *peerConn, _ string) {
		hdr := conformance.AppendHeader(nil, opBinary, true, 0, false, [4]byte{}, 1<<20+1)
		_ = pc.write(hdr, 5*time.Second)
	}))
	startEvil(h, evil, "")
	s, err := openSession(h.gw.addr, "/evil/", "victim", dialOpts{})
	if err != nil {
		t.Fatalf("session on the evil backend: %v", err)
	}
	h.onStop(s.close)
	if err := s.send(opText, true, []byte("cmd:attack")); err != nil {
		t.Fatal(err)
	}
	expectSessionEnds(t, s, 3*time.Second)
	h.expectClosedByGateway(evil, 2*time.Second)
	h.finish()
}

// floodFor is how long floods last: long enough that an unbounded buffer
// grows past the RSS bound many times over.
const floodFor = 3 * time.Second

// drainLimit bounds what a client that did not read during a flood reads
// afterwards. A gateway queues at most its write budget (4 MiB) plus
// socket buffers for such a client; more means its queue is unbounded.
const drainLimit = 32 << 20

// drainClient reads what the gateway sent a client that did not read
// during a flood, until a close frame, the end of TCP, 2 s of silence, or
// drainLimit bytes (an error). closed reports whether the gateway ended
// the session.
func drainClient(h *harness, c *wsClient) (closed bool, code int, got int64, err error) {
	for got < drainLimit {
		if h.stopped() {
			return false, 0, got, errors.New("stopped while draining")
		}
		f, err := c.readFrame(2 * time.Second)
		switch {
		case peerClosed(err):
			return true, -1, got, nil
		case isTimeout(err):
			return false, 0, got, nil
		case err != nil:
			return false, 0, got, err
		}
		got += int64(len(f.Payload))
		if f.Opcode == opClose {
			code = 0
			if len(f.Payload) >= 2 {
				code = int(f.Payload[0])<<8 | int(f.Payload[1])
			}
			return true, code, got, nil
		}
	}
	return false, 0, got, fmt.Errorf("more than %s queued for a client that did not read", mib(drainLimit))
}

// testEndlessFramesUnreadClient: bound to a session whose client reads
// nothing (4 KiB receive buffer), the backend sends 64 KiB binary frames
// back to back. The gateway must pause reading the backend or close.
func testEndlessFramesUnreadClient(t *testing.T) {
	h := newHarness(t)
	evil := h.peer("evil", attackOnCommand(func(pc *peerConn, tag string) {
		frame := conformance.AppendFrame(nil, opBinary, true, 0, false, append([]byte(tag+"|"), make([]byte, 64<<10-len(tag)-1)...))
		pc.spawn(func() { pc.flood(h.ctx, frame, floodFor) })
	}))
	startEvil(h, evil, "")
	s, err := openSession(h.gw.addr, "/evil/", "reads-nothing", dialOpts{rcvBuf: 4096})
	if err != nil {
		t.Fatalf("session on the evil backend: %v", err)
	}
	h.onStop(s.close)
	if err := s.send(opText, true, []byte("cmd:attack")); err != nil {
		t.Fatal(err)
	}
	h.sleep(floodFor) // reading nothing
	closed, code, got, err := drainClient(h, s.wsClient)
	if err != nil {
		t.Errorf("draining the client: %v", err)
	}
	t.Logf("the client, reading again, got %s and closed=%v (code %d)", mib(got), closed, code)
	pcs := evil.attackedConns()
	paused := false
	for _, pc := range pcs {
		paused = paused || pc.stalled.Load() || pc.isGone()
	}
	if !closed && !paused {
		t.Errorf("the gateway neither closed the session nor stopped reading the flooding backend")
	}
	h.finish()
}

// testPingFloodUnreadLeased: bound to a session, the backend sends pings
// of 125 bytes back to back and never reads its socket (the gateway's
// pongs pile up in front of it).
func testPingFloodUnreadLeased(t *testing.T) {
	h := newHarness(t)
	batch := pingBatch(256)
	evil := h.peer("evil", attackOnCommand(func(pc *peerConn, _ string) {
		pc.flood(h.ctx, batch, floodFor) // on the reading goroutine: nothing is read meanwhile
	}))
	startEvil(h, evil, "")
	s, err := openSession(h.gw.addr, "/evil/", "pinged", dialOpts{})
	if err != nil {
		t.Fatalf("session on the evil backend: %v", err)
	}
	h.onStop(s.close)
	if err := s.send(opText, true, []byte("cmd:attack")); err != nil {
		t.Fatal(err)
	}
	h.sleep(floodFor)
	h.expectClosedOrStalled(evil)
	h.finish()
}

// testPingFloodUnreadIdle: the pooled connections, idle, flood pings and
// never read.
func testPingFloodUnreadIdle(t *testing.T) {
	h := newHarness(t)
	trigger := make(chan struct{})
	batch := pingBatch(256)
	evil := h.peer("evil", armed(trigger, func(pc *peerConn) {
		pc.markAttacked()
		pc.flood(h.ctx, batch, floodFor)
	}))
	startEvil(h, evil, "")
	h.fire(evil, trigger)
	h.sleep(floodFor)
	h.expectClosedOrStalled(evil)
	h.finish()
}

// testPingFloodIdleRead: the pooled connections, idle, flood pings while
// reading the pongs: the gateway may keep up, but its memory stays bounded
// and the canary is served.
func testPingFloodIdleRead(t *testing.T) {
	h := newHarness(t)
	trigger := make(chan struct{})
	batch := pingBatch(256)
	evil := h.peer("evil", armed(trigger, func(pc *peerConn) {
		pc.markAttacked()
		pc.spawn(pc.drain)
		pc.flood(h.ctx, batch, floodFor)
	}))
	startEvil(h, evil, "")
	h.fire(evil, trigger)
	h.sleep(floodFor)
	h.finish()
}

// testHungUpgrade: in a group with an honest backend, a backend that
// accepts TCP and never answers the upgrade. Six sessions opened at once
// on the group must all be served.
func testHungUpgrade(t *testing.T) {
	h := newHarness(t)
	hung := h.peer("hung", hang)
	good := h.peer("good", honest())
	cfg := twoGroups(h, map[*peerServer]string{
		good: fmt.Sprintf("pool_target: %d", evilPool),
		hung: fmt.Sprintf("pool_target: %d", evilPool),
	}, "")
	h.start(gwOpts{config: cfg}, poolWait{good, evilPool})
	const n = 6
	errs := make([]error, n)
	sessions := make([]*session, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := openSession(h.gw.addr, "/evil/", fmt.Sprintf("mixed-%d", i), dialOpts{timeout: 10 * time.Second})
			if err == nil {
				h.onStop(s.close)
				err = s.roundTrip("rt:1", roundTripWithin)
			}
			sessions[i], errs[i] = s, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("session %d of %d on the group with a hung backend: %v", i+1, n, err)
		}
	}
	for _, s := range sessions {
		if s != nil {
			_ = s.closeSession()
		}
	}
	h.finish()
}

// churnResult collects what many short sessions saw.
type churnResult struct {
	mu       sync.Mutex
	sessions int
	foreign  []string // isolation failures
	failed   []string // sessions that did not get their replies
	nFailed  int
	nForeign int
}

func (r *churnResult) note(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions++
	if err == nil {
		return
	}
	var fe *foreignError
	if errors.As(err, &fe) {
		r.nForeign++
		if len(r.foreign) < 5 {
			r.foreign = append(r.foreign, err.Error())
		}
		return
	}
	r.nFailed++
	if len(r.failed) < 5 {
		r.failed = append(r.failed, err.Error())
	}
}

func (r *churnResult) report(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Logf("%d sessions: %d received another session's frames, %d failed otherwise", r.sessions, r.nForeign, r.nFailed)
	if r.nForeign > 0 {
		t.Errorf("isolation: %d of %d sessions received frames that were not theirs; first ones:\n  %s",
			r.nForeign, r.sessions, strings.Join(r.foreign, "\n  "))
	}
	if r.nFailed > 0 {
		t.Errorf("%d of %d sessions did not complete their round trips; first ones:\n  %s",
			r.nFailed, r.sessions, strings.Join(r.failed, "\n  "))
	}
}

// churn runs workers goroutines that each run perWorker sessions through
// one(worker, i), until the attack is stopped.
func churn(h *harness, workers, perWorker int, res *churnResult, one func(id string, rng *rand.Rand) error) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; i < perWorker && !h.stopped(); i++ {
				id := fmt.Sprintf("w%d-s%d", w, i)
				if err := one(id, rng); err != nil {
					res.note(fmt.Errorf("session %s: %w", id, err))
				} else {
					res.note(nil)
				}
			}
		})
	}
	wg.Wait()
}

// linger reads for d, as a session that stays open a while; a timeout is
// the normal outcome, any frame that arrives is checked.
func (s *session) linger(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := s.next(time.Until(deadline)); err != nil {
			if isTimeout(err) {
				return nil
			}
			return err
		}
	}
	return nil
}

// testPauseMidFragment: the backend answers "cmd:frag" with the first
// fragment of a text message; the client closes at once; 50-400 ms later
// the backend sends the last fragment. Later sessions on that backend
// must never see it, nor any continuation they did not start.
func testPauseMidFragment(t *testing.T, policy string) {
	h := newHarness(t)
	var parts atomic.Int64
	evil := h.peer("fragmenter", tagEcho(echoHooks{onMessage: func(pc *peerConn, tag string, msg []byte) bool {
		if string(msg) != "cmd:frag" {
			return false
		}
		if pc.writeFrame(opText, false, []byte(tag+"|OLD-part-1")) != nil {
			return true
		}
		delay := time.Duration(50+rand.IntN(350)) * time.Millisecond
		pc.spawn(func() {
			if pc.after(delay) && pc.writeFrame(opCont, true, []byte(tag+"|OLD-part-2")) == nil {
				parts.Add(1)
			}
		})
		return true
	}}))
	startEvil(h, evil, policy)
	res := &churnResult{}
	churn(h, 8, 25, res, func(id string, rng *rand.Rand) error {
		s, err := openSession(h.gw.addr, "/evil/", id, dialOpts{})
		if err != nil {
			return err
		}
		defer s.close()
		if rng.IntN(2) == 0 { // leaves mid-message
			if err := s.send(opText, true, []byte("cmd:frag")); err != nil {
				return err
			}
			f, err := s.next(roundTripWithin)
			if err != nil {
				return fmt.Errorf("waiting for the first fragment: %w", err)
			}
			if f.Fin || !bytes.HasSuffix(f.Payload, []byte("|OLD-part-1")) {
				return fmt.Errorf("want the first fragment, got %v", f)
			}
			return s.closeSession()
		}
		if err := s.linger(time.Duration(50+rng.IntN(250)) * time.Millisecond); err != nil {
			return err
		}
		if err := s.roundTrip("rt:1", roundTripWithin); err != nil {
			return err
		}
		return s.closeSession()
	})
	t.Logf("the backend sent %d delayed last fragments", parts.Load())
	res.report(t)
	h.finish()
}

// testLateFrames: for every session, the backend sends a "late final
// transcript" carrying the session's tag 100-500 ms after the session
// started, mostly after it ended. 500 short sessions, 8 at a time: none
// may receive another session's tag.
func testLateFrames(t *testing.T, policy string) {
	h := newHarness(t)
	var late atomic.Int64
	evil := h.peer("late", tagEcho(echoHooks{onMessage: func(pc *peerConn, tag string, msg []byte) bool {
		if !bytes.HasPrefix(msg, []byte("tag:")) {
			return false
		}
		delay := time.Duration(100+rand.IntN(400)) * time.Millisecond
		pc.spawn(func() {
			if pc.after(delay) && pc.writeFrame(opText, true, []byte(tag+"|late final transcript")) == nil {
				late.Add(1)
			}
		})
		return false // and answer the tag as usual
	}}))
	startEvil(h, evil, policy)
	res := &churnResult{}
	churn(h, 8, 63, res, func(id string, rng *rand.Rand) error {
		s, err := openSession(h.gw.addr, "/evil/", id, dialOpts{})
		if err != nil {
			return err
		}
		defer s.close()
		if err := s.roundTrip("rt:1", roundTripWithin); err != nil {
			return err
		}
		if err := s.linger(time.Duration(rng.IntN(30)) * time.Millisecond); err != nil {
			return err
		}
		return s.closeSession()
	})
	t.Logf("the backend sent %d late transcripts", late.Load())
	res.report(t)
	h.finish()
}
