package server

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
)

// Split input on a live socket: the upgrade request and the frames behind
// it arrive one byte per write, or cut at random points, so the server sees
// every header, length, mask and payload cut in every way. TCP_NODELAY is
// on (conformance.Dial), so each write leaves as its own segment; the
// server may still coalesce some, which is fine. The echoes must come back
// exactly, then the close handshake, then TCP closed.

// splitSeed makes the random cuts reproducible; iteration i uses the
// stream splitSeed, i.
const splitSeed = 0x5eed_6455

// splitReply is one frame the server must send back.
type splitReply struct {
	op      conformance.Opcode
	payload []byte
}

// splitScript returns the frames a client sends after its request and the
// replies expected, in order. Payloads and the cut points inside the
// fragmented message come from r; big adds a frame with a 64-bit length.
func splitScript(r *rand.Rand, big bool) (frames []byte, want []splitReply) {
	add := func(f []byte, replies ...splitReply) {
		frames = append(frames, f...)
		want = append(want, replies...)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	hello := []byte("héllo wörld €𝄞")
	add(conformance.Masked(conformance.OpText, true, hello), splitReply{conformance.OpText, hello})
	b200 := random(200) // 16-bit length
	add(conformance.Masked(conformance.OpBinary, true, b200), splitReply{conformance.OpBinary, b200})
	add(conformance.Masked(conformance.OpPing, true, []byte("ping-1")), splitReply{conformance.OpPong, []byte("ping-1")})

	// A text message in three fragments cut at random bytes (often inside
	// a code point), a ping between the first two.
	msg := append(conformance.TextPayload(40+r.IntN(60)), "-κόσμε-😀"...)
	i := 1 + r.IntN(len(msg)-2)
	j := i + 1 + r.IntN(len(msg)-i-1)
	add(conformance.Masked(conformance.OpText, false, msg[:i]))
	add(conformance.Masked(conformance.OpPing, true, []byte("mid")), splitReply{conformance.OpPong, []byte("mid")})
	add(conformance.Masked(conformance.OpContinuation, false, msg[i:j]))
	add(conformance.Masked(conformance.OpContinuation, true, msg[j:]), splitReply{conformance.OpText, msg})

	add(conformance.Masked(conformance.OpPong, true, []byte("unsolicited"))) // ignored
	add(conformance.Masked(conformance.OpBinary, true, nil), splitReply{conformance.OpBinary, []byte{}})
	t1000 := conformance.TextPayload(1000)
	add(conformance.Masked(conformance.OpText, true, t1000), splitReply{conformance.OpText, t1000})
	if big {
		b := random(70000) // 64-bit length
		add(conformance.Masked(conformance.OpBinary, true, b), splitReply{conformance.OpBinary, b})
	}
	add(conformance.Masked(conformance.OpClose, true, conformance.ClosePayload(conformance.CloseNormal, "done")),
		splitReply{conformance.OpClose, conformance.ClosePayload(conformance.CloseNormal, "")})
	return frames, want
}

// splitExpect reads the replies: each exactly, then TCP closed.
func splitExpect(t *testing.T, c *conformance.Client, want []splitReply) {
	t.Helper()
	for i, w := range want {
		f := c.NextFrame()
		if w.op == conformance.OpClose {
			code, _, _ := f.CloseCode()
			wantCode, _, _ := conformance.Frame{Payload: w.payload}.CloseCode()
			if f.Opcode != conformance.OpClose || code != wantCode {
				t.Fatalf("reply %d: got %v, want close %d", i, f, wantCode)
			}
			continue
		}
		if f.Opcode != w.op || !f.Fin {
			t.Fatalf("reply %d: got %v, want a final %v frame of %d bytes", i, f, w.op, len(w.payload))
		}
		if d := conformance.Diff(f.Payload, w.payload); d != "" {
			t.Fatalf("reply %d (%v): %s", i, w.op, d)
		}
	}
	c.ExpectTCPClosed(time.Second)
}

// randomCuts returns a piece-size function that cuts n bytes at about
// cuts random points.
func randomCuts(r *rand.Rand, n, cuts int) func() int {
	mean := max(n/max(cuts, 1), 1)
	return func() int { return 1 + r.IntN(2*mean) }
}

func TestSplitInput(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, Config{})
	addr := srv.Addr()
	t.Logf("random cuts from seed %#x", splitSeed)
	one := func() int { return 1 }
	conns := 0

	t.Run("byte_per_write", func(t *testing.T) {
		t.Run("handshake_then_frames", func(t *testing.T) {
			t.Parallel()
			c := conformance.Dial(t, addr, 5*time.Second)
			req := conformance.NewRequest(addr, "/")
			c.WriteSplit(req.Bytes(), one)
			c.ExpectUpgrade(req)
			frames, want := splitScript(rand.New(rand.NewPCG(splitSeed, 1<<32)), false)
			c.WriteSplit(frames, one)
			splitExpect(t, c, want)
		})
		t.Run("request_and_frames_as_one_stream", func(t *testing.T) {
			t.Parallel()
			c := conformance.Dial(t, addr, 5*time.Second)
			req := conformance.NewRequest(addr, "/")
			frames, want := splitScript(rand.New(rand.NewPCG(splitSeed, 1<<32+1)), false)
			c.WriteSplit(append(req.Bytes(), frames...), one)
			c.ExpectUpgrade(req)
			splitExpect(t, c, want)
		})
	})
	conns += 2

	const withFrames, afterUpgrade = 24, 12
	t.Run("random_cuts", func(t *testing.T) {
		for i := 0; i < withFrames; i++ {
			t.Run(fmt.Sprintf("request_and_frames_in_one_stream/%d", i), func(t *testing.T) {
				t.Parallel()
				r := rand.New(rand.NewPCG(splitSeed, uint64(i)))
				c := conformance.Dial(t, addr, 5*time.Second)
				req := conformance.NewRequest(addr, "/")
				frames, want := splitScript(r, i%3 == 0)
				in := append(req.Bytes(), frames...)
				c.WriteSplit(in, randomCuts(r, len(in), 2+r.IntN(40)))
				c.ExpectUpgrade(req)
				splitExpect(t, c, want)
			})
		}
		for i := 0; i < afterUpgrade; i++ {
			t.Run(fmt.Sprintf("request_then_frames/%d", i), func(t *testing.T) {
				t.Parallel()
				r := rand.New(rand.NewPCG(splitSeed, uint64(1000+i)))
				c := conformance.Dial(t, addr, 5*time.Second)
				req := conformance.NewRequest(addr, "/")
				b := req.Bytes()
				c.WriteSplit(b, randomCuts(r, len(b), 1+r.IntN(10)))
				c.ExpectUpgrade(req)
				frames, want := splitScript(r, i%3 == 1)
				c.WriteSplit(frames, randomCuts(r, len(frames), 2+r.IntN(40)))
				splitExpect(t, c, want)
			})
		}
	})
	conns += withFrames + afterUpgrade

	if t.Failed() {
		return
	}
	confIdle(t, srv)
	st := srv.Stats()
	confCheckCounters(t, st, []confCounter{
		{"Upgraded", st.Upgraded.Load, int64(conns)},
		closedCounter(st, ReasonClientClose, int64(conns)),
	})
}
