package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	coderws "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/conformance"
)

// Interop tests: the echo endpoint driven by two independent client
// libraries, gorilla/websocket and coder/websocket. Every network operation
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
	frame int // gorilla: write buffer size (payload per frame); coder: bytes per Write (one frame each)
	chunk int // gorilla: bytes per Write call on the NextWriter
}

var fragCases = []fragCase{
	{text: true, size: 1000, frame: 64, chunk: 100},
	{text: false, size: 1000, frame: 64, chunk: 100},
	{text: true, size: 100 << 10, frame: 4096, chunk: 3000},
	{text: false, size: 100 << 10, frame: 4096, chunk: 3000},
	{text: true, size: DefaultMaxMessageBytes, frame: 64 << 10, chunk: 50000},  // exactly the limit, reassembled
	{text: false, size: DefaultMaxMessageBytes, frame: 64 << 10, chunk: 50000}, // exactly the limit, reassembled
}

func (fc fragCase) name() string {
	kind := "binary"
	if fc.text {
		kind = "text"
	}
	return fmt.Sprintf("%s/%s_in_%s_frames", kind, sizeName(fc.size), sizeName(fc.frame))
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

func TestInteropGorilla(t *testing.T) {
	t.Parallel() // every test function has its own server
	srv := startInteropServer(t, Config{})
	logSeed(t)

	t.Run("echo", func(t *testing.T) {
		for _, text := range []bool{true, false} {
			for _, size := range echoSizes {
				t.Run(kindName(text)+"/"+sizeName(size), func(t *testing.T) {
					r := newTestRand(t, 0)
					// gorilla cuts a message into frames of its write buffer
					// size: size it so the message goes out as one frame.
					c, _ := dialGorilla(t, srv.url, &websocket.Dialer{WriteBufferSize: max(size, 1)})
					defer closeGorilla(c)
					gorillaDeadlines(c, interopIOTimeout)
					watch := srv.watchStall(gorillaAbort(c))
					defer watch.Stop()
					msg := randPayload(r, text, size)
					// A small message of the other type right behind it, written
					// before either echo is read: frame boundaries must hold.
					tail := randPayload(r, !text, 1+r.IntN(200))
					if err := c.WriteMessage(gorillaOp(text), msg); err != nil {
						t.Fatalf("write %d bytes: %v", size, err)
					}
					if err := c.WriteMessage(gorillaOp(!text), tail); err != nil {
						t.Fatalf("write tail: %v", err)
					}
					for i, want := range [][]byte{msg, tail} {
						wantOp := gorillaOp(text != (i == 1))
						op, got, err := c.ReadMessage()
						if err != nil {
							t.Fatalf("read echo %d: %v%s (server: %s)", i, err, stallNote(watch.Stop()), statsLine(srv.Stats()))
						}
						if op != wantOp {
							t.Errorf("echo %d: message type %d, want %d", i, op, wantOp)
						}
						if d := conformance.Diff(got, want); d != "" {
							t.Errorf("echo %d: %s", i, d)
						}
					}
				})
			}
		}
	})

	t.Run("fragmented", func(t *testing.T) {
		for _, fc := range fragCases {
			t.Run(fc.name(), func(t *testing.T) {
				r := newTestRand(t, 0)
				c, _ := dialGorilla(t, srv.url, &websocket.Dialer{WriteBufferSize: fc.frame})
				defer closeGorilla(c)
				gorillaDeadlines(c, interopIOTimeout)
				watch := srv.watchStall(gorillaAbort(c))
				defer watch.Stop()
				msg := randPayload(r, fc.text, fc.size)
				framesBefore := srv.Stats().FramesIn.Load()
				w, err := c.NextWriter(gorillaOp(fc.text))
				if err != nil {
					t.Fatalf("NextWriter: %v", err)
				}
				writes := 0
				for rest := msg; len(rest) > 0; writes++ {
					n := min(fc.chunk, len(rest))
					if _, err := w.Write(rest[:n]); err != nil {
						t.Fatalf("write chunk %d: %v%s%s (server: %s)", writes, err, stallNote(watch.Stop()), gorillaAftermath(c), statsLine(srv.Stats()))
					}
					rest = rest[n:]
				}
				if err := w.Close(); err != nil {
					t.Fatalf("close writer: %v", err)
				}
				op, got, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("read echo: %v%s (server: %s)", err, stallNote(watch.Stop()), statsLine(srv.Stats()))
				}
				frames := srv.Stats().FramesIn.Load() - framesBefore
				t.Logf("%d writes arrived as %d frames", writes, frames)
				if frames < 2 {
					t.Errorf("server saw %d frame(s): the client did not fragment", frames)
				}
				if op != gorillaOp(fc.text) {
					t.Errorf("message type %d, want %d", op, gorillaOp(fc.text))
				}
				if d := conformance.Diff(got, msg); d != "" {
					t.Errorf("echo: %s", d)
				}
			})
		}
	})

	t.Run("ping", func(t *testing.T) {
		for _, size := range []int{0, 4, 125} {
			t.Run(sizeName(size), func(t *testing.T) {
				r := newTestRand(t, 0)
				c, _ := dialGorilla(t, srv.url, nil)
				defer closeGorilla(c)
				gorillaDeadlines(c, interopIOTimeout)
				pongs := make(chan string, 4)
				c.SetPongHandler(func(data string) error {
					pongs <- data
					return nil
				})
				ping := randBinary(r, size)
				if err := c.WriteControl(websocket.PingMessage, ping, time.Now().Add(interopIOTimeout)); err != nil {
					t.Fatalf("write ping: %v", err)
				}
				// Control frames are handled inside ReadMessage: the pong
				// precedes this echo on the wire.
				if err := c.WriteMessage(websocket.TextMessage, []byte("after ping")); err != nil {
					t.Fatalf("write: %v", err)
				}
				if _, got, err := c.ReadMessage(); err != nil || string(got) != "after ping" {
					t.Fatalf("read echo: %q, %v", got, err)
				}
				select {
				case got := <-pongs:
					if d := conformance.Diff([]byte(got), ping); d != "" {
						t.Errorf("pong payload: %s", d)
					}
				default:
					t.Fatalf("no pong arrived before the echo that followed the ping")
				}
			})
		}
	})

	t.Run("close/normal", func(t *testing.T) {
		srv.waitNoSessions(t)
		st := srv.Stats()
		clientClosed := st.Closed(ReasonClientClose)
		c, _ := dialGorilla(t, srv.url, nil)
		defer c.Close()
		gorillaDeadlines(c, interopIOTimeout)
		waitFor(t, interopIOTimeout, "Sessions == 1", func() bool { return st.Sessions.Load() == 1 })
		err := c.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(interopIOTimeout))
		if err != nil {
			t.Fatalf("write close: %v", err)
		}
		_, _, err = c.ReadMessage()
		if code, ok := gorillaCloseCode(err); !ok || code != websocket.CloseNormalClosure {
			t.Fatalf("after sending close 1000: ReadMessage error %v (%T), want *websocket.CloseError with code 1000", err, err)
		}
		srv.waitNoSessions(t)
		waitFor(t, interopIOTimeout, "Closed(ReasonClientClose) to rise", func() bool {
			return st.Closed(ReasonClientClose) == clientClosed+1
		})
	})

	t.Run("close/abnormal", func(t *testing.T) {
		srv.waitNoSessions(t)
		st := srv.Stats()
		lost := st.Closed(ReasonConnectionLost)
		c, _ := dialGorilla(t, srv.url, nil)
		gorillaDeadlines(c, interopIOTimeout)
		if err := c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("read: %v", err)
		}
		waitFor(t, interopIOTimeout, "Sessions == 1", func() bool { return st.Sessions.Load() == 1 })
		if err := c.UnderlyingConn().Close(); err != nil { // no close frame
			t.Fatalf("close TCP: %v", err)
		}
		srv.waitNoSessions(t)
		waitFor(t, interopIOTimeout, "Closed(ReasonConnectionLost) to rise", func() bool {
			return st.Closed(ReasonConnectionLost) == lost+1
		})
	})

	t.Run("close/too_big", func(t *testing.T) {
		for _, tc := range tooBigCases {
			t.Run(tc.name, func(t *testing.T) {
				r := newTestRand(t, 0)
				srv.waitNoSessions(t)
				st := srv.Stats()
				tooBig := st.Closed(ReasonMessageTooBig)
				d := &websocket.Dialer{}
				if tc.fragmented {
					d.WriteBufferSize = 64 << 10 // 16 full frames, then a 1-byte one over the limit
				}
				c, _ := dialGorilla(t, srv.url, d)
				defer c.Close()
				gorillaDeadlines(c, interopIOTimeout)
				watch := srv.watchStall(gorillaAbort(c))
				defer watch.Stop()
				msg := randPayload(r, tc.text, DefaultMaxMessageBytes+1)
				// The server may cut the connection while the message is still
				// being written: write in the background and read the close.
				wrote := make(chan error, 1)
				go func() { wrote <- c.WriteMessage(gorillaOp(tc.text), msg) }()
				_, _, err := c.ReadMessage()
				werr := <-wrote
				code, ok := gorillaCloseCode(err)
				if !ok || code != websocket.CloseMessageTooBig {
					t.Fatalf("after %d bytes: ReadMessage error %v (%T)%s, want *websocket.CloseError with code 1009 (write error: %v; server: %s)",
						len(msg), err, err, stallNote(watch.Stop()), werr, statsLine(st))
				}
				t.Logf("write result: %v", werr)
				srv.waitNoSessions(t)
				waitFor(t, interopIOTimeout, "Closed(ReasonMessageTooBig) to rise", func() bool {
					return st.Closed(ReasonMessageTooBig) == tooBig+1
				})
			})
		}
	})
}

func TestInteropCoder(t *testing.T) {
	t.Parallel() // every test function has its own server
	srv := startInteropServer(t, Config{})
	logSeed(t)

	t.Run("echo", func(t *testing.T) {
		for _, text := range []bool{true, false} {
			for _, size := range echoSizes {
				t.Run(kindName(text)+"/"+sizeName(size), func(t *testing.T) {
					r := newTestRand(t, 0)
					// coder sends a message given to Write as one frame.
					c, _ := dialCoder(t, srv.url, nil)
					defer closeCoder(c)
					ctx, cancel := ioCtx()
					defer cancel()
					watch := srv.watchStall(cancel)
					defer watch.Stop()
					msg := randPayload(r, text, size)
					tail := randPayload(r, !text, 1+r.IntN(200))
					if err := c.Write(ctx, coderOp(text), msg); err != nil {
						t.Fatalf("write %d bytes: %v", size, err)
					}
					if err := c.Write(ctx, coderOp(!text), tail); err != nil {
						t.Fatalf("write tail: %v", err)
					}
					for i, want := range [][]byte{msg, tail} {
						wantOp := coderOp(text != (i == 1))
						op, got, err := c.Read(ctx)
						if err != nil {
							t.Fatalf("read echo %d: %v%s (server: %s)", i, err, stallNote(watch.Stop()), statsLine(srv.Stats()))
						}
						if op != wantOp {
							t.Errorf("echo %d: message type %v, want %v", i, op, wantOp)
						}
						if d := conformance.Diff(got, want); d != "" {
							t.Errorf("echo %d: %s", i, d)
						}
					}
				})
			}
		}
	})

	t.Run("fragmented", func(t *testing.T) {
		for _, fc := range fragCases {
			t.Run(fc.name(), func(t *testing.T) {
				r := newTestRand(t, 0)
				c, _ := dialCoder(t, srv.url, nil)
				defer closeCoder(c)
				ctx, cancel := ioCtx()
				defer cancel()
				watch := srv.watchStall(cancel)
				defer watch.Stop()
				msg := randPayload(r, fc.text, fc.size)
				framesBefore := srv.Stats().FramesIn.Load()
				// coder sends every Write as one frame, and Close as an
				// empty final continuation frame.
				w, err := c.Writer(ctx, coderOp(fc.text))
				if err != nil {
					t.Fatalf("Writer: %v", err)
				}
				writes := 0
				for rest := msg; len(rest) > 0; writes++ {
					n := min(fc.frame, len(rest))
					if _, err := w.Write(rest[:n]); err != nil {
						t.Fatalf("write frame %d: %v%s%s (server: %s)", writes, err, stallNote(watch.Stop()), coderAftermath(c), statsLine(srv.Stats()))
					}
					rest = rest[n:]
				}
				if err := w.Close(); err != nil {
					t.Fatalf("close writer: %v", err)
				}
				op, got, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("read echo: %v%s (server: %s)", err, stallNote(watch.Stop()), statsLine(srv.Stats()))
				}
				frames := srv.Stats().FramesIn.Load() - framesBefore
				t.Logf("%d writes arrived as %d frames", writes, frames)
				if frames < 2 {
					t.Errorf("server saw %d frame(s): the client did not fragment", frames)
				}
				if op != coderOp(fc.text) {
					t.Errorf("message type %v, want %v", op, coderOp(fc.text))
				}
				if d := conformance.Diff(got, msg); d != "" {
					t.Errorf("echo: %s", d)
				}
			})
		}
	})

	t.Run("ping", func(t *testing.T) {
		c, _ := dialCoder(t, srv.url, nil)
		defer closeCoder(c)
		ctx, cancel := ioCtx()
		defer cancel()
		// coder delivers pongs only while something reads: keep a Read
		// going, and end it with a data message once the pings are done.
		type result struct {
			data []byte
			err  error
		}
		read := make(chan result, 1)
		go func() {
			_, p, err := c.Read(ctx)
			read <- result{p, err}
		}()
		for i := range 3 {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Ping(pctx)
			pcancel()
			if err != nil {
				t.Fatalf("ping %d: %v", i, err)
			}
		}
		if err := c.Write(ctx, coderws.MessageText, []byte("after ping")); err != nil {
			t.Fatalf("write: %v", err)
		}
		if res := <-read; res.err != nil || string(res.data) != "after ping" {
			t.Fatalf("read echo: %q, %v", res.data, res.err)
		}
	})

	t.Run("close/normal", func(t *testing.T) {
		srv.waitNoSessions(t)
		st := srv.Stats()
		clientClosed := st.Closed(ReasonClientClose)
		c, _ := dialCoder(t, srv.url, nil)
		defer c.CloseNow()
		waitFor(t, interopIOTimeout, "Sessions == 1", func() bool { return st.Sessions.Load() == 1 })
		// Close sends 1000 and returns nil only once the server's close
		// frame with the same code came back (it waits at most 5 s).
		if err := c.Close(coderws.StatusNormalClosure, "bye"); err != nil {
			t.Fatalf("Close(1000, bye): %v (server: %s)", err, statsLine(st))
		}
		srv.waitNoSessions(t)
		waitFor(t, interopIOTimeout, "Closed(ReasonClientClose) to rise", func() bool {
			return st.Closed(ReasonClientClose) == clientClosed+1
		})
	})

	t.Run("close/abnormal", func(t *testing.T) {
		srv.waitNoSessions(t)
		st := srv.Stats()
		lost := st.Closed(ReasonConnectionLost)
		c, _ := dialCoder(t, srv.url, nil)
		ctx, cancel := ioCtx()
		defer cancel()
		if err := c.Write(ctx, coderws.MessageBinary, []byte{1, 2, 3}); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatalf("read: %v", err)
		}
		waitFor(t, interopIOTimeout, "Sessions == 1", func() bool { return st.Sessions.Load() == 1 })
		if err := c.CloseNow(); err != nil { // no close frame
			t.Fatalf("CloseNow: %v", err)
		}
		srv.waitNoSessions(t)
		waitFor(t, interopIOTimeout, "Closed(ReasonConnectionLost) to rise", func() bool {
			return st.Closed(ReasonConnectionLost) == lost+1
		})
	})

	t.Run("close/too_big", func(t *testing.T) {
		for _, tc := range tooBigCases {
			t.Run(tc.name, func(t *testing.T) {
				r := newTestRand(t, 0)
				srv.waitNoSessions(t)
				st := srv.Stats()
				tooBig := st.Closed(ReasonMessageTooBig)
				c, _ := dialCoder(t, srv.url, nil)
				defer c.CloseNow()
				ctx, cancel := ioCtx()
				defer cancel()
				watch := srv.watchStall(cancel)
				defer watch.Stop()
				msg := randPayload(r, tc.text, DefaultMaxMessageBytes+1)
				wrote := make(chan error, 1)
				go func() {
					if !tc.fragmented {
						wrote <- c.Write(ctx, coderOp(tc.text), msg)
						return
					}
					w, err := c.Writer(ctx, coderOp(tc.text))
					if err != nil {
						wrote <- err
						return
					}
					for rest := msg; len(rest) > 0; {
						n := min(64<<10, len(rest))
						if _, err := w.Write(rest[:n]); err != nil {
							wrote <- err
							return
						}
						rest = rest[n:]
					}
					wrote <- w.Close()
				}()
				_, _, err := c.Read(ctx)
				werr := <-wrote
				if code := coderws.CloseStatus(err); code != coderws.StatusMessageTooBig {
					t.Fatalf("after %d bytes: Read error %v%s, close status %d, want 1009 (write error: %v; server: %s)",
						len(msg), err, stallNote(watch.Stop()), code, werr, statsLine(st))
				}
				t.Logf("write result: %v", werr)
				srv.waitNoSessions(t)
				waitFor(t, interopIOTimeout, "Closed(ReasonMessageTooBig) to rise", func() bool {
					return st.Closed(ReasonMessageTooBig) == tooBig+1
				})
			})
		}
	})
}

// TestInteropConcurrentClients runs 50 clients at once, half gorilla and
// half coder, each pipelining 100 messages of mixed type and size (some
// fragmented) and checking every echo in order.
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
		gorilla := i%2 == 0
		name := fmt.Sprintf("client %d (coder)", i)
		if gorilla {
			name = fmt.Sprintf("client %d (gorilla)", i)
		}
		// Dial here so a handshake failure stops the test at once.
		var (
			send  func(message) error
			recv  func() (message, error)
			stop  func()
			abort func()
		)
		if gorilla {
			// A 1 KiB write buffer fragments every larger message.
			c, _ := dialGorilla(t, srv.url, &websocket.Dialer{WriteBufferSize: 1 << 10})
			gorillaDeadlines(c, 20*time.Second)
			send = func(m message) error { return c.WriteMessage(gorillaOp(m.text), m.data) }
			recv = func() (message, error) {
				op, p, err := c.ReadMessage()
				return message{op == websocket.TextMessage, p}, err
			}
			stop = func() { closeGorilla(c) }
			abort = gorillaAbort(c)
		} else {
			c, _ := dialCoder(t, srv.url, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			n := 0
			send = func(m message) error {
				n++
				if n%3 != 0 || len(m.data) < 2 {
					return c.Write(ctx, coderOp(m.text), m.data)
				}
				// Every third message in three frames (plus coder's empty final one).
				w, err := c.Writer(ctx, coderOp(m.text))
				if err != nil {
					return err
				}
				third := len(m.data) / 3
				for _, part := range [][]byte{m.data[:third], m.data[third : 2*third], m.data[2*third:]} {
					if _, err := w.Write(part); err != nil {
						return err
					}
				}
				return w.Close()
			}
			recv = func() (message, error) {
				op, p, err := c.Read(ctx)
				return message{op == coderws.MessageText, p}, err
			}
			stop = func() { closeCoder(c); cancel() }
			abort = cancel
		}
		aborts = append(aborts, abort)
		wg.Go(func() {
			defer stop()
			<-start
			sendErr := make(chan error, 1)
			go func() {
				for j, m := range msgs {
					if err := send(m); err != nil {
						sendErr <- fmt.Errorf("send %d: %w", j, err)
						return
					}
				}
				sendErr <- nil
			}()
			for j, want := range msgs {
				got, err := recv()
				if err != nil {
					t.Errorf("%s: read echo %d of %d: %v%s", name, j, messages, err, stallNote(watchFired()))
					abort() // unblock the sender
					break
				}
				if got.text != want.text {
					t.Errorf("%s: echo %d: text=%v, want text=%v", name, j, got.text, want.text)
				}
				if d := conformance.Diff(got.data, want.data); d != "" {
					t.Errorf("%s: echo %d: %s", name, j, d)
					abort()
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
// whatever order the client offers in, with both libraries.
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
	t.Run("gorilla", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c, resp := dialGorilla(t, srv.url, &websocket.Dialer{Subprotocols: tc.offered})
				defer closeGorilla(c)
				if got := c.Subprotocol(); got != tc.want {
					t.Errorf("offered %q: negotiated %q, want %q (header %q)",
						tc.offered, got, tc.want, resp.Header.Values("Sec-WebSocket-Protocol"))
				}
				if n := len(resp.Header.Values("Sec-WebSocket-Protocol")); n > 1 {
					t.Errorf("%d Sec-WebSocket-Protocol headers, want at most 1", n)
				}
				gorillaDeadlines(c, interopIOTimeout)
				if err := c.WriteMessage(websocket.TextMessage, []byte(tc.name)); err != nil {
					t.Fatalf("write: %v", err)
				}
				if _, p, err := c.ReadMessage(); err != nil || string(p) != tc.name {
					t.Fatalf("echo: %q, %v", p, err)
				}
			})
		}
	})
	t.Run("coder", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c, resp := dialCoder(t, srv.url, &coderws.DialOptions{Subprotocols: tc.offered})
				defer closeCoder(c)
				if got := c.Subprotocol(); got != tc.want {
					t.Errorf("offered %q: negotiated %q, want %q (header %q)",
						tc.offered, got, tc.want, resp.Header.Values("Sec-WebSocket-Protocol"))
				}
				ctx, cancel := ioCtx()
				defer cancel()
				if err := c.Write(ctx, coderws.MessageText, []byte(tc.name)); err != nil {
					t.Fatalf("write: %v", err)
				}
				if _, p, err := c.Read(ctx); err != nil || string(p) != tc.name {
					t.Fatalf("echo: %q, %v", p, err)
				}
			})
		}
	})
}
