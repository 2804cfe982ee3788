package server

import (
	"cmp"
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

	"github.com/wsgate/wsgate/internal/conformance"
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
			st.FramesIn(), st.FramesOut(), st.BytesIn(), st.BytesOut()}
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
		st.FramesIn(), st.FramesOut(),
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

// --- client libraries ------------------------------------------------------

// interopClient is one connection of a client library under test. The
// interop cases speak only through it, so each case is written once and
// runs once per library. Every method is bounded by the connection's I/O
// timeout (dialOptions.timeout).
type interopClient interface {
	// write sends msg as one message, cut into frames of at most
	// dialOptions.frame payload bytes.
	write(text bool, msg []byte) error
	// read returns the next data message.
	read() (text bool, msg []byte, err error)
	// ping sends a ping and returns once its pong came back with the same
	// payload (coder chooses its own payload). Both libraries handle
	// control frames only inside a read: one must be in progress.
	ping(payload []byte) error
	// closeNormal runs the close handshake with 1000 and reason; nil only
	// once the server's close frame came back with 1000 too.
	closeNormal(reason string) error
	// closeCode is the code of the close frame behind a read error, 0 if
	// there was none.
	closeCode(err error) int
	// drop closes TCP without a close frame.
	drop() error
	// abort makes pending and future reads and writes fail at once, so a
	// stalled server fails a test in stallQuiet, not at the I/O timeout.
	abort()
	// aftermath reads what the server sent after a failed write (usually
	// its close frame, which says why it cut the connection).
	aftermath() string
	// stop runs the close handshake best-effort and closes TCP.
	stop()
	subprotocol() string
}

// dialOptions is what a case asks of a connection, in terms both
// libraries can honour.
type dialOptions struct {
	// frame is the most payload per frame; longer messages are fragmented.
	// 0 leaves it to the library: gorilla's 4 KiB write buffer, coder's
	// one frame per message.
	frame        int
	subprotocols []string
	timeout      time.Duration // bounds all I/O on the connection; 0 means interopIOTimeout
}

// interopLib is a client library the interop cases run against.
type interopLib struct {
	name string
	dial func(t testing.TB, url string, o dialOptions) (interopClient, *http.Response)
}

var interopLibs = []interopLib{
	{name: "gorilla", dial: dialGorilla},
	{name: "coder", dial: dialCoder},
}

// dialFailed ends t with the dial error and the HTTP status, if any.
func dialFailed(t testing.TB, lib, url string, err error, resp *http.Response) {
	t.Helper()
	status := ""
	if resp != nil {
		status = " (HTTP " + resp.Status + ")"
	}
	t.Fatalf("%s dial %s: %v%s", lib, url, err, status)
}

// gorillaClient drives gorilla/websocket. Its deadlines are absolute,
// set once at dial.
type gorillaClient struct {
	c     *websocket.Conn
	pongs chan []byte // filled by the pong handler, inside ReadMessage
}

func dialGorilla(t testing.TB, url string, o dialOptions) (interopClient, *http.Response) {
	t.Helper()
	// gorilla cuts a message into frames of its write buffer size.
	d := websocket.Dialer{HandshakeTimeout: interopIOTimeout, WriteBufferSize: o.frame, Subprotocols: o.subprotocols}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		dialFailed(t, "gorilla", url, err, resp)
	}
	g := &gorillaClient{c: c, pongs: make(chan []byte, 1)}
	c.SetPongHandler(func(data string) error {
		select {
		case g.pongs <- []byte(data):
		default: // an unasked-for pong: ping reports the mismatch of the first
		}
		return nil
	})
	at := time.Now().Add(cmp.Or(o.timeout, interopIOTimeout))
	_ = c.SetReadDeadline(at)
	_ = c.SetWriteDeadline(at)
	return g, resp
}

func gorillaOp(text bool) int {
	if text {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}

func (g *gorillaClient) write(text bool, msg []byte) error {
	return g.c.WriteMessage(gorillaOp(text), msg)
}

func (g *gorillaClient) read() (bool, []byte, error) {
	op, p, err := g.c.ReadMessage()
	return op == websocket.TextMessage, p, err
}

func (g *gorillaClient) ping(payload []byte) error {
	if err := g.c.WriteControl(websocket.PingMessage, payload, time.Now().Add(interopIOTimeout)); err != nil {
		return fmt.Errorf("write ping: %w", err)
	}
	limit := time.NewTimer(interopIOTimeout)
	defer limit.Stop()
	select {
	case got := <-g.pongs:
		if d := conformance.Diff(got, payload); d != "" {
			return fmt.Errorf("pong payload: %s", d)
		}
		return nil
	case <-limit.C:
		return fmt.Errorf("no pong within %v", interopIOTimeout)
	}
}

func (g *gorillaClient) closeNormal(reason string) error {
	err := g.c.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason), time.Now().Add(interopIOTimeout))
	if err != nil {
		return fmt.Errorf("write close: %w", err)
	}
	_, _, err = g.c.ReadMessage()
	if g.closeCode(err) != websocket.CloseNormalClosure {
		return fmt.Errorf("after sending close 1000: ReadMessage error %v (%T), want *websocket.CloseError with code 1000", err, err)
	}
	return nil
}

func (g *gorillaClient) closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

func (g *gorillaClient) drop() error { return g.c.UnderlyingConn().Close() }

func (g *gorillaClient) abort() {
	_ = g.c.SetReadDeadline(time.Now())
	_ = g.c.SetWriteDeadline(time.Now())
}

func (g *gorillaClient) aftermath() string {
	_ = g.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := g.c.ReadMessage(); err != nil {
			return fmt.Sprintf("; then read: %v", err)
		}
	}
}

func (g *gorillaClient) stop() {
	defer g.c.Close()
	_ = g.c.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(2*time.Second))
	g.aftermath()
}

func (g *gorillaClient) subprotocol() string { return g.c.Subprotocol() }

// coderClient drives coder/websocket. All its I/O runs under one context,
// cancelled by abort and stop.
type coderClient struct {
	c      *coderws.Conn
	ctx    context.Context
	cancel context.CancelFunc
	frame  int // see dialOptions.frame
}

func dialCoder(t testing.TB, url string, o dialOptions) (interopClient, *http.Response) {
	t.Helper()
	hctx, hcancel := context.WithTimeout(context.Background(), interopIOTimeout)
	defer hcancel()
	c, resp, err := coderws.Dial(hctx, url, &coderws.DialOptions{Subprotocols: o.subprotocols})
	if err != nil {
		dialFailed(t, "coder", url, err, resp)
	}
	// Its default read limit is 32 KiB: accept twice the server's limit.
	c.SetReadLimit(2 * DefaultMaxMessageBytes)
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(o.timeout, interopIOTimeout))
	return &coderClient{c: c, ctx: ctx, cancel: cancel, frame: o.frame}, resp
}

func coderOp(text bool) coderws.MessageType {
	if text {
		return coderws.MessageText
	}
	return coderws.MessageBinary
}

func (k *coderClient) write(text bool, msg []byte) error {
	if k.frame == 0 || len(msg) <= k.frame {
		return k.c.Write(k.ctx, coderOp(text), msg)
	}
	// coder sends every Write as one frame, and Close as an empty final
	// continuation frame.
	w, err := k.c.Writer(k.ctx, coderOp(text))
	if err != nil {
		return err
	}
	for rest := msg; len(rest) > 0; {
		n := min(k.frame, len(rest))
		if _, err := w.Write(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return w.Close()
}

func (k *coderClient) read() (bool, []byte, error) {
	op, p, err := k.c.Read(k.ctx)
	return op == coderws.MessageText, p, err
}

// ping ignores payload: coder's Ping sends a counter and waits for the pong
// that echoes it.
func (k *coderClient) ping([]byte) error {
	ctx, cancel := context.WithTimeout(k.ctx, 5*time.Second)
	defer cancel()
	return k.c.Ping(ctx)
}

// closeNormal: coder's Close returns nil only once the server's close frame
// with the same code came back (it waits at most 5 s).
func (k *coderClient) closeNormal(reason string) error {
	return k.c.Close(coderws.StatusNormalClosure, reason)
}

func (k *coderClient) closeCode(err error) int { return max(0, int(coderws.CloseStatus(err))) }

func (k *coderClient) drop() error {
	defer k.cancel()
	return k.c.CloseNow()
}

func (k *coderClient) abort() { k.cancel() }

func (k *coderClient) aftermath() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for {
		if _, _, err := k.c.Read(ctx); err != nil {
			return fmt.Sprintf("; then read: %v", err)
		}
	}
}

func (k *coderClient) stop() {
	defer k.cancel()
	if err := k.c.Close(coderws.StatusNormalClosure, ""); err != nil {
		_ = k.c.CloseNow()
	}
}

func (k *coderClient) subprotocol() string { return k.c.Subprotocol() }
