package server

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	coderws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// Limits every network operation in the interop tests: nothing may block
// longer than this, so a server bug shows up as a failure, never a hang.
const interopIOTimeout = 10 * time.Second

// interopServer is an echo server started for one test function.
type interopServer struct {
	*Server
	url string // ws://host:port/
}

// startInteropServer starts a server for t and stops it when t ends.
func startInteropServer(t *testing.T, cfg Config) *interopServer {
	t.Helper()
	srv := startTestServer(t, cfg)
	return &interopServer{Server: srv, url: "ws://" + srv.Addr() + "/"}
}

// waitNoSessions waits until the server has no upgraded session open.
func (s *interopServer) waitNoSessions(t testing.TB) {
	t.Helper()
	waitFor(t, interopIOTimeout, "Stats().Sessions == 0", func() bool {
		return s.Stats().Sessions.Load() == 0
	})
}

// stallQuiet is how long the server's counters may stand still while a
// client waits for it before the wait is declared stalled. Echoing even a
// 1 MiB message over loopback moves them within milliseconds.
const stallQuiet = 2 * time.Second

// stallWatch aborts a client's wait once the server stops making progress,
// so a server that swallowed data fails a test in stallQuiet rather than
// after the full I/O timeout. It needs the server to itself: progress of
// other clients would hide a stall.
type stallWatch struct {
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	fired    atomic.Bool
}

// watchStall calls abort once none of the server's counters has changed
// for stallQuiet. Stop it with stop, which reports whether it fired.
func (s *interopServer) watchStall(abort func()) *stallWatch {
	w := &stallWatch{stop: make(chan struct{}), done: make(chan struct{})}
	st := s.Stats()
	snapshot := func() [8]int64 {
		return [8]int64{st.Accepted.Load(), st.Open.Load(), st.Upgraded.Load(), st.Sessions.Load(),
			st.FramesIn.Load(), st.FramesOut.Load(), st.BytesIn.Load(), st.BytesOut.Load()}
	}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		last, since := snapshot(), time.Now()
		for {
			select {
			case <-w.stop:
				return
			case now := <-tick.C:
				if cur := snapshot(); cur != last {
					last, since = cur, now
				} else if now.Sub(since) >= stallQuiet {
					w.fired.Store(true)
					abort()
					return
				}
			}
		}
	}()
	return w
}

// Stop ends the watch and reports whether it declared a stall. It may be
// called more than once.
func (w *stallWatch) Stop() bool {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.fired.Load()
}

// stallNote explains a failed wait the watch cut short.
func stallNote(stalled bool) string {
	if stalled {
		return fmt.Sprintf(" [server stalled: no counter moved for %v while the client waited]", stallQuiet)
	}
	return ""
}

// statsLine summarizes the counters for failure messages.
func statsLine(st *Stats) string {
	return fmt.Sprintf("accepted=%d open=%d upgraded=%d sessions=%d framesIn=%d framesOut=%d "+
		"closed{client=%d lost=%d tooBig=%d protocol=%d invalidPayload=%d slow=%d}",
		st.Accepted.Load(), st.Open.Load(), st.Upgraded.Load(), st.Sessions.Load(),
		st.FramesIn.Load(), st.FramesOut.Load(),
		st.Closed(ReasonClientClose), st.Closed(ReasonConnectionLost), st.Closed(ReasonMessageTooBig),
		st.Closed(ReasonProtocolError), st.Closed(ReasonInvalidPayload), st.Closed(ReasonSlowConsumer))
}

// Random content. The seed is fixed per run (WSGATE_INTEROP_SEED overrides
// it) and every test derives its own generator from its name, so a failing
// case can be replayed exactly.
var (
	interopSeedOnce sync.Once
	interopSeedVal  uint64
)

func interopSeed(t testing.TB) uint64 {
	interopSeedOnce.Do(func() {
		interopSeedVal = uint64(time.Now().UnixNano())
		if s := os.Getenv("WSGATE_INTEROP_SEED"); s != "" {
			if v, err := strconv.ParseUint(s, 10, 64); err == nil {
				interopSeedVal = v
			}
		}
	})
	return interopSeedVal
}

// newTestRand returns a generator for t (and an extra stream index).
func newTestRand(t testing.TB, stream uint64) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(t.Name()))
	return rand.New(rand.NewPCG(interopSeed(t), h.Sum64()^stream))
}

// logSeed records the seed so a failure can be replayed.
func logSeed(t testing.TB) {
	t.Logf("random seed %d (replay with WSGATE_INTEROP_SEED=%d)", interopSeed(t), interopSeed(t))
}

// randText returns exactly n bytes of valid UTF-8: ASCII mixed with 2-, 3-
// and 4-byte runes, so large messages cross frame and read boundaries in
// the middle of runes.
func randText(r *rand.Rand, n int) []byte {
	b := make([]byte, 0, n)
	for len(b) < n {
		var c rune
		switch r.IntN(8) {
		case 0:
			c = rune(0x80 + r.IntN(0x800-0x80)) // 2 bytes
		case 1:
			c = rune(0x800 + r.IntN(0xd800-0x800)) // 3 bytes, below the surrogates
		case 2:
			c = rune(0xe000 + r.IntN(0x10000-0xe000)) // 3 bytes, above the surrogates
		case 3:
			c = rune(0x10000 + r.IntN(0x110000-0x10000)) // 4 bytes
		default:
			c = rune(0x20 + r.IntN(0x7f-0x20)) // printable ASCII
		}
		if utf8.RuneLen(c) > n-len(b) {
			c = rune('a' + r.IntN(26))
		}
		b = utf8.AppendRune(b, c)
	}
	return b
}

// randBinary returns n random bytes.
func randBinary(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := i; j < i+8 && j < n; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b
}

// randPayload returns n bytes suited to a message of type text (valid
// UTF-8) or binary.
func randPayload(r *rand.Rand, text bool, n int) []byte {
	if text {
		return randText(r, n)
	}
	return randBinary(r, n)
}

// sizeName is a readable subtest name for a payload size.
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0 && n != 65536:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// --- gorilla/websocket -----------------------------------------------------

// dialGorilla opens a gorilla client connection; d may be nil.
func dialGorilla(t testing.TB, url string, d *websocket.Dialer) (*websocket.Conn, *http.Response) {
	t.Helper()
	var dd websocket.Dialer
	if d != nil {
		dd = *d
	}
	if dd.HandshakeTimeout == 0 {
		dd.HandshakeTimeout = interopIOTimeout
	}
	c, resp, err := dd.Dial(url, nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = " (HTTP " + resp.Status + ")"
		}
		t.Fatalf("gorilla dial %s: %v%s", url, err, status)
	}
	return c, resp
}

// gorillaAbort makes c's pending and future reads and writes fail at once.
func gorillaAbort(c *websocket.Conn) func() {
	return func() {
		_ = c.SetReadDeadline(time.Now())
		_ = c.SetWriteDeadline(time.Now())
	}
}

// gorillaDeadlines bounds every following read and write on c.
func gorillaDeadlines(c *websocket.Conn, d time.Duration) {
	at := time.Now().Add(d)
	_ = c.SetReadDeadline(at)
	_ = c.SetWriteDeadline(at)
}

// closeGorilla runs the close handshake best-effort and closes TCP.
func closeGorilla(c *websocket.Conn) {
	defer c.Close()
	_ = c.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(2*time.Second))
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// gorillaAftermath reads what the server sent after a failed write (usually
// its close frame, which says why it cut the connection).
func gorillaAftermath(c *websocket.Conn) string {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return fmt.Sprintf("; then read: %v", err)
		}
	}
}

// gorillaOp maps the text flag to a gorilla message type.
func gorillaOp(text bool) int {
	if text {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}

// --- coder/websocket -------------------------------------------------------

// dialCoder opens a coder client connection that accepts messages up to
// twice the server limit (its default read limit is 32 KiB).
func dialCoder(t testing.TB, url string, opts *coderws.DialOptions) (*coderws.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interopIOTimeout)
	defer cancel()
	c, resp, err := coderws.Dial(ctx, url, opts)
	if err != nil {
		status := ""
		if resp != nil {
			status = " (HTTP " + resp.Status + ")"
		}
		t.Fatalf("coder dial %s: %v%s", url, err, status)
	}
	c.SetReadLimit(2 * DefaultMaxMessageBytes)
	return c, resp
}

// closeCoder runs the close handshake best-effort (coder bounds it by 5 s).
func closeCoder(c *coderws.Conn) {
	if err := c.Close(coderws.StatusNormalClosure, ""); err != nil {
		_ = c.CloseNow()
	}
}

// coderAftermath reads what the server sent after a failed write.
func coderAftermath(c *coderws.Conn) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return fmt.Sprintf("; then read: %v", err)
		}
	}
}

// coderOp maps the text flag to a coder message type.
func coderOp(text bool) coderws.MessageType {
	if text {
		return coderws.MessageText
	}
	return coderws.MessageBinary
}

// ioCtx is a context bounded by the interop I/O timeout.
func ioCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), interopIOTimeout)
}

// gorillaCloseCode returns the code of the close frame behind a gorilla error.
func gorillaCloseCode(err error) (int, bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, true
	}
	return 0, false
}
