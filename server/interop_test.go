package server

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
)

// Interop tests: the echo endpoint driven by two independent client
// libraries, gorilla/websocket and coder/websocket, each case written once
// against interopClient and run once per library. Every network operation
// has a deadline (interopIOTimeout at most), and counters are polled with a
// deadline, never slept on.

// echoSizes are the payload sizes every library echoes, in text and binary:
// the length-encoding boundaries (125/126/127, 65535/65536) and the default
// message limit exactly.
var echoSizes = []int{0, 1, 125, 126, 127, 65535, 65536, 256 << 10, DefaultMaxMessageBytes}

// fragCase is a message the client sends in several frames.
type fragCase struct {
	text  bool
	size  int // whole message
	frame int // payload per frame
}

var fragCases = []fragCase{
	{text: true, size: 1000, frame: 64},
	{text: false, size: 1000, frame: 64},
	{text: true, size: 100 << 10, frame: 4096},
	{text: false, size: 100 << 10, frame: 4096},
	{text: true, size: DefaultMaxMessageBytes, frame: 64 << 10},  // exactly the limit, reassembled
	{text: false, size: DefaultMaxMessageBytes, frame: 64 << 10}, // exactly the limit, reassembled
}

func (fc fragCase) name() string {
	return fmt.Sprintf("%s/%s_in_%s_frames", kindName(fc.text), sizeName(fc.size), sizeName(fc.frame))
}

// tooBigCase is a message one byte over the default limit.
type tooBigCase struct {
	name       string
	text       bool
	fragmented bool // sent as 64 KiB frames: refused by the message limit, not the frame header
}

var tooBigCases = []tooBigCase{
	{name: "binary/single_frame", text: false},
	{name: "text/single_frame", text: true},
	{name: "binary/fragmented", text: false, fragmented: true},
	{name: "text/fragmented", text: true, fragmented: true},
}

func kindName(text bool) string {
	if text {
		return "text"
	}
	return "binary"
}

// interopCases run in order, once per library, against a server of the
// library's own: the close cases count sessions and closes, and a stall
// watch needs the server to itself.
var interopCases = []struct {
	name string
	run  func(t *testing.T, srv *interopServer, lib interopLib)
}{
	{"echo", interopEcho},
	{"fragmented", interopFragmented},
	{"ping", interopPing},
	{"close/normal", interopCloseNormal},
	{"close/abnormal", interopCloseAbnormal},
	{"close/too_big", interopTooBig},
}

func TestInterop(t *testing.T) {
	for _, lib := range interopLibs {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel() // every library has its own server
			srv := startInteropServer(t, Config{})
			logSeed(t)
			for _, tc := range interopCases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, srv, lib) })
			}
		})
	}
}

// interopEcho sends each size as one frame, with a small message of the
// other type right behind it, both written before either echo is read:
// frame boundaries must hold.
func interopEcho(t *testing.T, srv *interopServer, lib interopLib) {
	for _, text := range []bool{true, false} {
		for _, size := range echoSizes {
			t.Run(kindName(text)+"/"+sizeName(size), func(t *testing.T) {
				r := newTestRand(t, 0)
				c, _ := lib.dial(t, srv.url, dialOptions{frame: max(size, 1)})
				defer c.stop()
				watch := srv.watchStall(c.abort)
				defer watch.Stop()
				msg := randPayload(r, text, size)
				tail := randPayload(r, !text, 1+r.IntN(200))
				if err := c.write(text, msg); err != nil {
					t.Fatalf("write %d bytes: %v", size, err)
				}
				if err := c.write(!text, tail); err != nil {
					t.Fatalf("write tail: %v", err)
				}
				for i, want := range [][]byte{msg, tail} {
					wantText := text != (i == 1)
					gotText, got, err := c.read()
					if err != nil {
						t.Fatalf("read echo %d: %v%s (server: %s)", i, err, stallNote(watch.Stop()), statsLine(srv.Stats()))
					}
					if gotText != wantText {
						t.Errorf("echo %d: text=%v, want text=%v", i, gotText, wantText)
					}
					if d := conformance.Diff(got, want); d != "" {
						t.Errorf("echo %d: %s", i, d)
					}
				}
			})
		}
	}
}

// interopFragmented sends messages in several frames and checks the server
// saw them as such and echoed them whole.
func interopFragmented(t *testing.T, srv *interopServer, lib interopLib) {
	for _, fc := range fragCases {
		t.Run(fc.name(), func(t *testing.T) {
			r := newTestRand(t, 0)
			c, _ := lib.dial(t, srv.url, dialOptions{frame: fc.frame})
			defer c.stop()
			watch := srv.watchStall(c.abort)
			defer watch.Stop()
			msg := randPayload(r, fc.text, fc.size)
			framesBefore := srv.Stats().FramesIn()
			if err := c.write(fc.text, msg); err != nil {
				t.Fatalf("write: %v%s%s (server: %s)", err, stallNote(watch.Stop()), c.aftermath(), statsLine(srv.Stats()))
			}
			text, got, err := c.read()
			if err != nil {
				t.Fatalf("read echo: %v%s (server: %s)", err, stallNote(watch.Stop()), statsLine(srv.Stats()))
			}
			frames := srv.Stats().FramesIn() - framesBefore
			t.Logf("%d bytes in frames of at most %d arrived as %d frames", fc.size, fc.frame, frames)
			if frames < 2 {
				t.Errorf("server saw %d frame(s): the client did not fragment", frames)
			}
			if text != fc.text {
				t.Errorf("text=%v, want text=%v", text, fc.text)
			}
			if d := conformance.Diff(got, msg); d != "" {
				t.Errorf("echo: %s", d)
			}
		})
	}
}

// interopPing checks every ping is answered with its payload before the
// echo of a message sent after it.
func interopPing(t *testing.T, srv *interopServer, lib interopLib) {
	for _, size := range []int{0, 4, 125} {
		t.Run(sizeName(size), func(t *testing.T) {
			r := newTestRand(t, 0)
			c, _ := lib.dial(t, srv.url, dialOptions{})
			defer c.stop()
			// Pongs are delivered only while something reads: keep a read
			// going, and end it with a data message once the ping is done.
			type result struct {
				data []byte
				err  error
			}
			read := make(chan result, 1)
			go func() {
				_, p, err := c.read()
				read <- result{p, err}
			}()
			fail := func(format string, args ...any) {
				t.Helper()
				c.abort()
				<-read // one reader at a time: stop reads too
				t.Fatalf(format, args...)
			}
			if err := c.ping(randBinary(r, size)); err != nil {
				fail("ping: %v", err)
			}
			if err := c.write(true, []byte("after ping")); err != nil {
				fail("write: %v", err)
			}
			if res := <-read; res.err != nil || string(res.data) != "after ping" {
				t.Fatalf("read echo: %q, %v", res.data, res.err)
			}
		})
	}
}

func interopCloseNormal(t *testing.T, srv *interopServer, lib interopLib) {
	srv.waitNoSessions(t)
	st := srv.Stats()
	clientClosed := st.Closed(ReasonClientClose)
	c, _ := lib.dial(t, srv.url, dialOptions{})
	defer c.drop()
	waitFor(t, interopIOTimeout, "Sessions == 1", func() bool { return st.Sessions.Load() == 1 })
	if err := c.closeNormal("bye"); err != nil {
		t.Fatalf("close 1000 bye: %v (server: %s)", err, statsLine(st))
	}
	srv.waitNoSessions(t)
	waitFor(t, interopIOTimeout, "Closed(ReasonClientClose) to rise", func() bool {
		return st.Closed(ReasonClientClose) == clientClosed+1
	})
}

func interopCloseAbnormal(t *testing.T, srv *interopServer, lib interopLib) {
	srv.waitNoSessions(t)
	st := srv.Stats()
	lost := st.Closed(ReasonConnectionLost)
	c, _ := lib.dial(t, srv.url, dialOptions{})
	if err := c.write(false, []byte{1, 2, 3}); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, _, err := c.read(); err != nil {
		t.Fatalf("read: %v", err)
	}
	waitFor(t, interopIOTimeout, "Sessions == 1", func() bool { return st.Sessions.Load() == 1 })
	if err := c.drop(); err != nil { // no close frame
		t.Fatalf("close TCP: %v", err)
	}
	srv.waitNoSessions(t)
	waitFor(t, interopIOTimeout, "Closed(ReasonConnectionLost) to rise", func() bool {
		return st.Closed(ReasonConnectionLost) == lost+1
	})
}

func interopTooBig(t *testing.T, srv *interopServer, lib interopLib) {
	for _, tc := range tooBigCases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRand(t, 0)
			srv.waitNoSessions(t)
			st := srv.Stats()
			tooBig := st.Closed(ReasonMessageTooBig)
			frame := DefaultMaxMessageBytes + 1
			if tc.fragmented {
				frame = 64 << 10 // 16 full frames, then a 1-byte one over the limit
			}
			c, _ := lib.dial(t, srv.url, dialOptions{frame: frame})
			defer c.drop()
			watch := srv.watchStall(c.abort)
			defer watch.Stop()
			msg := randPayload(r, tc.text, DefaultMaxMessageBytes+1)
			// The server may cut the connection while the message is still
			// being written: write in the background and read the close.
			wrote := make(chan error, 1)
			go func() { wrote <- c.write(tc.text, msg) }()
			_, _, err := c.read()
			werr := <-wrote
			if code := c.closeCode(err); code != 1009 {
				t.Fatalf("after %d bytes: read error %v (%T)%s, close code %d, want 1009 (write error: %v; server: %s)",
					len(msg), err, err, stallNote(watch.Stop()), code, werr, statsLine(st))
			}
			t.Logf("write result: %v", werr)
			srv.waitNoSessions(t)
			waitFor(t, interopIOTimeout, "Closed(ReasonMessageTooBig) to rise", func() bool {
				return st.Closed(ReasonMessageTooBig) == tooBig+1
			})
		})
	}
}

// TestInteropConcurrentClients runs 50 clients at once, the libraries taking
// turns, each pipelining 100 messages of mixed type and size (those over
// 1 KiB fragmented) and checking every echo in order.
func TestInteropConcurrentClients(t *testing.T) {
	t.Parallel() // every test function has its own server
	const (
		clients  = 50
		messages = 100
	)
	srv := startInteropServer(t, Config{})
	logSeed(t)
	st := srv.Stats()
	upgraded := st.Upgraded.Load()

	type message struct {
		text bool
		data []byte
	}
	var watchFired func() bool // set before the clients start
	start := make(chan struct{})
	defer func() { // a failed dial must not leave clients waiting
		select {
		case <-start:
		default:
			close(start)
		}
	}()
	var (
		wg     sync.WaitGroup
		aborts []func() // make each client's pending I/O fail at once
	)
	for i := range clients {
		r := newTestRand(t, uint64(i))
		msgs := make([]message, messages)
		for j := range msgs {
			size := r.IntN(4 << 10)
			if r.IntN(20) == 0 {
				size = 60<<10 + r.IntN(20<<10) // across the 16-bit length boundary
			}
			text := r.IntN(2) == 0
			msgs[j] = message{text, randPayload(r, text, size)}
		}
		lib := interopLibs[i%len(interopLibs)]
		name := fmt.Sprintf("client %d (%s)", i, lib.name)
		// Dial here so a handshake failure stops the test at once.
		c, _ := lib.dial(t, srv.url, dialOptions{frame: 1 << 10, timeout: 20 * time.Second})
		aborts = append(aborts, c.abort)
		wg.Go(func() {
			defer c.stop()
			<-start
			sendErr := make(chan error, 1)
			go func() {
				for j, m := range msgs {
					if err := c.write(m.text, m.data); err != nil {
						sendErr <- fmt.Errorf("send %d: %w", j, err)
						return
					}
				}
				sendErr <- nil
			}()
			for j, want := range msgs {
				text, got, err := c.read()
				if err != nil {
					t.Errorf("%s: read echo %d of %d: %v%s", name, j, messages, err, stallNote(watchFired()))
					c.abort() // unblock the sender
					break
				}
				if text != want.text {
					t.Errorf("%s: echo %d: text=%v, want text=%v", name, j, text, want.text)
				}
				if d := conformance.Diff(got, want.data); d != "" {
					t.Errorf("%s: echo %d: %s", name, j, d)
					c.abort()
					break
				}
			}
			if err := <-sendErr; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	// If the server stops making progress with echoes outstanding, fail
	// every client now instead of at its deadline.
	watch := srv.watchStall(func() {
		for _, abort := range aborts {
			abort()
		}
	})
	defer watch.Stop()
	watchFired = watch.fired.Load
	began := time.Now()
	close(start)
	wg.Wait()
	watch.Stop()
	t.Logf("%d clients x %d messages in %v", clients, messages, time.Since(began).Round(time.Millisecond))
	if got := st.Upgraded.Load() - upgraded; got != clients {
		t.Errorf("server upgraded %d sessions, want %d", got, clients)
	}
	srv.waitNoSessions(t)
	if t.Failed() {
		t.Logf("server: %s", statsLine(st))
	}
}

// TestInteropSubprotocol checks that the server's preference order wins
// whatever order the client offers in, with every library.
func TestInteropSubprotocol(t *testing.T) {
	t.Parallel() // every test function has its own server
	srv := startInteropServer(t, Config{Subprotocols: []string{"v2.wsgate", "v1.wsgate"}})
	cases := []struct {
		name    string
		offered []string
		want    string
	}{
		{"v1_then_v2", []string{"v1.wsgate", "v2.wsgate"}, "v2.wsgate"},
		{"v2_then_v1", []string{"v2.wsgate", "v1.wsgate"}, "v2.wsgate"},
		{"v1_only", []string{"v1.wsgate"}, "v1.wsgate"},
		{"unknown_and_v1", []string{"v9.wsgate", "v1.wsgate"}, "v1.wsgate"},
		{"unknown_only", []string{"v9.wsgate"}, ""},
		{"none", nil, ""},
	}
	for _, lib := range interopLibs {
		for _, tc := range cases {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				c, resp := lib.dial(t, srv.url, dialOptions{subprotocols: tc.offered})
				defer c.stop()
				if got := c.subprotocol(); got != tc.want {
					t.Errorf("offered %q: negotiated %q, want %q (header %q)",
						tc.offered, got, tc.want, resp.Header.Values("Sec-WebSocket-Protocol"))
				}
				if n := len(resp.Header.Values("Sec-WebSocket-Protocol")); n > 1 {
					t.Errorf("%d Sec-WebSocket-Protocol headers, want at most 1", n)
				}
				if err := c.write(true, []byte(tc.name)); err != nil {
					t.Fatalf("write: %v", err)
				}
				if _, p, err := c.read(); err != nil || string(p) != tc.name {
					t.Fatalf("echo: %q, %v", p, err)
				}
			})
		}
	}
}
