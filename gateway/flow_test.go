package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/conformance"
	"github.com/wsgate/wsgate/internal/rawbackend"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/server"
)

// Flow control through the gateway (issue: flow control and a streaming
// relay): overload slows sessions instead of closing them, nothing is lost
// or reordered, and a peer that stops reading is closed only after the
// stall timeout.

// numbered is message i: its number, then filler up to size.
func numbered(i, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(i))
	for j := 4; j < size; j++ {
		p[j] = byte(i + j)
	}
	return p
}

// readNumbered reads n messages and checks each is numbered in order and
// whole; pause is slept after each (a slow reader).
func readNumbered(c *websocket.Conn, n, size int, pause time.Duration) error {
	for i := 0; i < n; i++ {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, p, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("message %d of %d: %w", i, n, err)
		}
		if !bytes.Equal(p, numbered(i, size)) {
			return fmt.Errorf("message %d of %d: %d bytes, numbered %d: lost or reordered", i, n, len(p), binary.BigEndian.Uint32(p))
		}
		time.Sleep(pause)
	}
	return nil
}

// TestBackpressureClientToBackend: a backend that reads slower than its
// client sends: the gateway stops reading the client instead of queueing
// without bound, and every message arrives, in order.
func TestBackpressureClientToBackend(t *testing.T) {
	rb, err := rawbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	rb.ReadDelay.Store(int64(200 * time.Microsecond))
	g := startGatewayArgs(t, "-loops", "1", "-pool-size", "1", "-flow-window", "65536", "-backend", backendURL(rb.Addr()))
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	const n, size = 3000, 4096 // 12 MiB against a 64 KiB window
	writeErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := c.WriteMessage(websocket.BinaryMessage, numbered(i, size)); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	if err := readNumbered(c, n, size, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if g.Server.Stats().Pauses.Load() == 0 {
		t.Fatal("the client was never paused: the gateway queued what the backend could not take")
	}
	if n := g.Server.Stats().Closed(server.ReasonSlowBackend) + g.Server.Stats().Closed(server.ReasonSlowConsumer); n != 0 {
		t.Fatalf("%d sessions closed for being slow", n)
	}
}

// TestBackpressureBackendToClient: a client that reads slower than its
// backend sends: the backend connection is paused, every message arrives,
// in order, and the session stays open.
func TestBackpressureBackendToClient(t *testing.T) {
	sb := &scriptBackend{}
	g := startGateway(t, []server.Handler{sb}, "-loops", "1", "-pool-size", "1", "-flow-window", "65536")
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	const n, size = 400, 16 << 10 // 6.4 MiB
	if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("numbered %d %d", n, size))); err != nil {
		t.Fatal(err)
	}
	if err := readNumbered(c, n, size, 100*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if g.Server.Stats().Pauses.Load() == 0 {
		t.Fatal("the backend connection was never paused: the gateway queued what the client could not take")
	}
	roundTrip(t, c, websocket.TextMessage, []byte("still open"))
}

// TestBackpressureBothWays: a client that writes fast and reads slowly,
// through an echo backend: both directions fill, and gnet changes the
// connections' interest itself as their queues fill and empty while the
// gateway pauses and resumes them. Every echo arrives, in order.
func TestBackpressureBothWays(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "2", "-pool-size", "2", "-flow-window", "32768")
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	const n, size = 4000, 1024
	writeErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := c.WriteMessage(websocket.BinaryMessage, numbered(i, size)); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	if err := readNumbered(c, n, size, 50*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if g.Server.Stats().Pauses.Load() == 0 {
		t.Fatal("nothing was paused")
	}
}

// TestStalledClientIsClosed1008: a client that stops reading while its
// backend floods: the gateway holds at most its window for it, pauses the
// backend, and after the stall timeout closes the session (1008); a
// session beside it is not affected.
func TestStalledClientIsClosed1008(t *testing.T) {
	sb := &scriptBackend{}
	g := startGateway(t, []server.Handler{sb}, "-loops", "1", "-pool-size", "2", "-flow-window", "65536", "-stall-timeout", "500ms")
	canary := dial(t, g.url("/"), nil)
	defer canary.Close()
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("flood")); err != nil { // 16 MiB, read by nobody
		t.Fatal(err)
	}
	st := g.Server.Stats()
	testutil.CheckFor(t, 10*time.Second, counter("sessions closed slow_consumer", func() int64 {
		return st.Closed(server.ReasonSlowConsumer)
	}, 1))
	if st.Pauses.Load() == 0 || st.Stalls.Load() == 0 {
		t.Fatalf("pauses %d stalls %d: the backend was not held back first", st.Pauses.Load(), st.Stalls.Load())
	}
	roundTrip(t, canary, websocket.TextMessage, []byte("unaffected"))
}

// TestSixteenMiBMessageStreams: a 16 MiB message goes through the gateway
// and back while its client reads, with close 1000 at the end: no write
// budget ends it, whatever its size against the window.
func TestSixteenMiBMessageStreams(t *testing.T) {
	const size = 16 << 20
	be, err := server.New(server.Config{Addr: "127.0.0.1:0", Loops: 1, MaxMessageBytes: size})
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Start(); err != nil {
		t.Fatal(err)
	}
	defer be.Stop()
	g := startGatewayArgs(t, "-loops", "1", "-pool-size", "1", "-max-message-bytes", "16777216", "-backend", backendURL(be.Addr()))
	d := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	c, _, err := d.Dial(g.url("/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadLimit(size)
	msg := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	var wg sync.WaitGroup
	wg.Add(1)
	var werr error
	go func() {
		defer wg.Done()
		werr = c.WriteMessage(websocket.BinaryMessage, msg)
	}()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, got, err := c.ReadMessage()
	wg.Wait()
	if werr != nil || err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("16 MiB echo: write %v, read %v, %d bytes", werr, err, len(got))
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	expectClose(t, c, 1000)
}

// TestBadTextFailsMidFrame: invalid UTF-8 in the middle of a text frame
// fails the session at once (1007), before the frame has arrived whole.
func TestBadTextFailsMidFrame(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "1", "-pool-size", "1")
	addr := g.Server.Addr()
	c := conformance.Dial(t, addr, 5*time.Second)
	c.Handshake(conformance.NewRequest(addr, "/"))
	mask := conformance.RandomMask()
	part := append(bytes.Repeat([]byte("ok"), 500), 0xed, 0xa0, 0x80) // a surrogate
	masked := append([]byte(nil), part...)
	for i := range masked {
		masked[i] ^= mask[i%4]
	}
	c.Write(conformance.AppendHeader(nil, conformance.OpText, true, 0, true, mask, 100000))
	c.Write(masked) // 99,000 bytes of the frame never come
	c.Timeout = 2 * time.Second
	c.ExpectFail(conformance.CloseInvalidPayload, 2*time.Second)
}

// TestValidMessageThenProtocolError: a client's valid message, then a bad
// frame: the backend's echo of the valid message reaches the client
// before the gateway's close, as from a strict endpoint alone.
func TestValidMessageThenProtocolError(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-loops", "1", "-pool-size", "1")
	addr := g.Server.Addr()
	c := conformance.Dial(t, addr, 5*time.Second)
	c.Handshake(conformance.NewRequest(addr, "/"))
	var both []byte
	mask := conformance.RandomMask()
	both = append(both, conformance.AppendHeader(nil, conformance.OpText, true, 0, true, mask, 5)...)
	hello := []byte("hello")
	for i := range hello {
		hello[i] ^= mask[i%4]
	}
	both = append(both, hello...)
	both = append(both, conformance.AppendHeader(nil, conformance.Opcode(3), true, 0, true, mask, 0)...) // reserved opcode
	c.Write(both)
	c.ExpectMessage(conformance.OpText, []byte("hello"))
	c.ExpectFail(conformance.CloseProtocolError, 2*time.Second)
}

// TestBackendWritesBeforeReading: a backend that finishes a long write
// before it reads again (one goroutine, blocking writes), while its client
// has filled the queue toward it: the gateway keeps reading the backend
// (its client reads), so the backend's write completes, it reads again,
// and nothing stalls. Pausing the backend because of the queue toward it
// would make each wait for the other until the stall timeout.
func TestBackendWritesBeforeReading(t *testing.T) {
	const burst, burstSize = 64, 128 << 10 // 8 MiB from the backend, more than any socket buffers
	const n, size = 64, 16 << 10           // 1 MiB from the client against a 64 KiB window
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	begin := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				if rawbackend.Handshake(c, r, nil) != nil {
					return
				}
				<-begin
				for i := 0; i < burst; i++ {
					if wsutil.WriteServerBinary(c, numbered(i, burstSize)) != nil {
						return
					}
				}
				rw := struct {
					io.Reader
					io.Writer
				}{r, c}
				for i := 0; i < n; i++ {
					p, err := wsutil.ReadClientBinary(rw)
					if err != nil || !bytes.Equal(p, numbered(i, size)) {
						return
					}
				}
				_ = wsutil.WriteServerText(c, []byte("read them all"))
			}()
		}
	}()
	g := startGatewayArgs(t, "-loops", "1", "-pool-size", "1", "-flow-window", "65536", "-stall-timeout", "3s", "-backend", backendURL(ln.Addr().String()))
	c := dial(t, g.url("/"), nil)
	defer c.Close()
	go func() {
		for i := 0; i < n; i++ {
			if c.WriteMessage(websocket.BinaryMessage, numbered(i, size)) != nil {
				return
			}
		}
	}()
	testutil.CheckFor(t, 10*time.Second, func() error {
		if g.Server.Stats().Pauses.Load() == 0 {
			return errors.New("the client was never paused")
		}
		return nil
	})
	close(begin)
	c.SetReadLimit(burstSize)
	if err := readNumbered(c, burst, burstSize, 0); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "read them all" {
		t.Fatalf("the backend's last message: %q, %v", p, err)
	}
}
