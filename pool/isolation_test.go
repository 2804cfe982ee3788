package pool

import (
	"bytes"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// Regression tests for the hardening issue's defect 4 (a backend frame
// meant for one user reaching the next), 5 (pongs past the write budget)
// and 11 (the client's mask on the backend link).

// leaseAndRelease leases b's connection for one session and releases it
// cleanly, as a session that ended on a message boundary does.
func (f *fixture) leaseAndRelease() *Conn {
	f.t.Helper()
	c := f.shard.Acquire(&session{}, DefaultGroup)
	if c == nil {
		f.t.Fatal("no connection to lease")
	}
	f.release(c, true)
	return c
}

func fragment(op ws.OpCode, fin bool, p string) []byte {
	var b0 byte = byte(op)
	if fin {
		b0 |= 0x80
	}
	return append([]byte{b0, byte(len(p))}, p...)
}

func TestDefaultPolicyNeverReuses(t *testing.T) {
	var st Settings
	if st.Policy != PolicyClose {
		t.Fatalf("the zero Settings policy is %v; the default must be close", st.Policy)
	}
	f := newFixture(t, Settings{URL: "ws://a:1/"})
	b := f.pool.Backends()[0]
	f.enroll(b)
	f.leaseAndRelease()
	f.flushCloses()
	if b.Closed.Load() != 1 || b.Idle.Load() != 0 || b.Releases.Load() != 0 {
		t.Fatalf("default policy: closed %d idle %d releases %d", b.Closed.Load(), b.Idle.Load(), b.Releases.Load())
	}
	f.checkCounters()
}

// A reset that ends on its quiet period while the backend is in the middle
// of a fragmented message, or has sent part of a frame, closes the
// connection: the next session would get the rest.
func TestResetNeverIdlesMidMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"mid-message", fragment(ws.OpText, false, "OLD-part-1")},
		{"part of a frame", []byte{0x81, 0x0a, 'O', 'L', 'D'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Settings{URL: "ws://a:1/", Policy: PolicyReset, ResetQuiet: time.Nanosecond})
			b := f.pool.Backends()[0]
			fc := f.enroll(b)
			c := f.leaseAndRelease()
			fc.in = append([]byte(nil), tc.in...)
			f.callback(func() { c.OnTraffic() })
			f.callback(func() { c.OnTimer(f.shard.now() + int64(time.Second)) }) // quiet period over
			f.flushCloses()
			if b.Idle.Load() != 0 || b.Closed.Load() != 1 {
				t.Fatalf("idle %d closed %d: a connection holding part of the old session went back to idle",
					b.Idle.Load(), b.Closed.Load())
			}
			f.checkCounters()
		})
	}
}

// The quiet period is real silence: the shard clock only moves a tick at a
// time, and measured with it a drain could end right after a frame.
func TestResetQuietIsMeasuredPrecisely(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Policy: PolicyReset, ResetQuiet: time.Hour, ResetTimeout: 10 * time.Hour})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	c := f.leaseAndRelease()
	fc.in = textFrame("late")
	f.callback(func() { c.OnTraffic() })
	// The shard clock says an hour passed since the last tick; the frame
	// arrived just now.
	f.callback(func() { c.OnTimer(f.shard.now() + int64(2*time.Hour)) })
	if b.Idle.Load() != 0 || b.Releasing.Load() != 1 {
		t.Fatalf("idle %d releasing %d: the drain ended right after a frame", b.Idle.Load(), b.Releasing.Load())
	}
}

// With an ack, frames that follow the ack in the same read belong to
// something the next session did not ask for: the connection closes.
func TestResetAckFollowedByMoreCloses(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/", Policy: PolicyReset, ResetMessage: "R", ResetAck: "A"})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	c := f.leaseAndRelease()
	fc.in = append(textFrame("A"), textFrame("after the ack")...)
	f.callback(func() { c.OnTraffic() })
	f.flushCloses()
	if b.Idle.Load() != 0 || b.Closed.Load() != 1 {
		t.Fatalf("idle %d closed %d", b.Idle.Load(), b.Closed.Load())
	}
	f.checkCounters()
}

// Reuse: a release with backend bytes waiting is unclean, and a data frame
// that arrives while idle closes the connection.
func TestReuseClosesWhenTheBackendSpeaksOutOfTurn(t *testing.T) {
	t.Run("bytes waiting at release", func(t *testing.T) {
		f := newFixture(t, Settings{URL: "ws://a:1/", Policy: PolicyReuse})
		b := f.pool.Backends()[0]
		fc := f.enroll(b)
		c := f.shard.Acquire(&session{}, DefaultGroup)
		fc.in = []byte{0x81, 0x05, 'l', 'a'} // part of a frame
		f.release(c, true)
		f.flushCloses()
		if b.Idle.Load() != 0 || b.Closed.Load() != 1 {
			t.Fatalf("idle %d closed %d", b.Idle.Load(), b.Closed.Load())
		}
	})
	t.Run("frame while idle", func(t *testing.T) {
		f := newFixture(t, Settings{URL: "ws://a:1/", Policy: PolicyReuse})
		b := f.pool.Backends()[0]
		fc := f.enroll(b)
		c := f.leaseAndRelease()
		if b.Idle.Load() != 1 {
			t.Fatal("not idle after a clean release")
		}
		fc.in = textFrame("late final transcript")
		f.callback(func() { c.OnTraffic() })
		if !fc.closed {
			t.Fatal("the connection stayed open after a frame while idle")
		}
		f.flushCloses()
		if b.Stray.Load() != 1 || b.Idle.Load() != 0 {
			t.Fatalf("stray %d idle %d", b.Stray.Load(), b.Idle.Load())
		}
		f.checkCounters()
	})
}

// A backend that pings and never reads: past the write budget its pongs
// are not queued, the connection fails.
func TestBackendPingFloodIsBounded(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/"})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	ping := []byte{0x89, 0x02, 'h', 'i'}
	fc.in = bytes.Repeat(ping, 10)
	f.callback(func() { fc.c.OnTraffic() })
	if len(fc.out) != 10 {
		t.Fatalf("%d pongs for 10 pings while the backend reads", len(fc.out))
	}
	fc.pending = f.pool.cfg.QueueLimit + 1
	fc.in = bytes.Repeat(ping, 10)
	f.callback(func() { fc.c.OnTraffic() })
	if !fc.closed {
		t.Fatal("a backend that does not read kept getting pongs")
	}
	if n := len(fc.out); n != 11 { // the 10 pongs and the close frame
		t.Fatalf("%d frames written", n)
	}
}

// The gateway masks what it sends a backend with keys of its own, fresh
// for every frame; the client's key never reaches the backend.
func TestForwardedFramesGetFreshMasks(t *testing.T) {
	f := newFixture(t, Settings{URL: "ws://a:1/"})
	b := f.pool.Backends()[0]
	fc := f.enroll(b)
	clientKey := [4]byte{1, 2, 3, 4}
	seen := map[[4]byte]bool{}
	for i := 0; i < 64; i++ {
		payload := []byte("hello")
		h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: clientKey, Length: 5}
		if err := fc.c.WritePiece(codec.Piece{Header: h, First: true, Last: true, Payload: payload}); err != nil {
			t.Fatal(err)
		}
		h, n, err := codec.ParseHeader(fc.out[len(fc.out)-1], codec.RoleServer, 0)
		if err != nil {
			t.Fatal(err)
		}
		if h.Mask == clientKey {
			t.Fatal("the client's mask was forwarded")
		}
		seen[h.Mask] = true
		got := append([]byte(nil), fc.out[len(fc.out)-1][n:]...)
		codec.Mask(got, h.Mask, 0)
		if string(got) != "hello" {
			t.Fatalf("unmasked payload %q", got)
		}
	}
	if len(seen) < 60 {
		t.Fatalf("only %d distinct masks in 64 frames", len(seen))
	}
}
