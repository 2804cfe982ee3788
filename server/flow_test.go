package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/conformance"
)

// TestEndpointEchoesSixteenMiB: the endpoint echoes a 16 MiB message to a
// client that reads it, and closes 1000: the echo passes the flow window
// many times over, which pauses the session while the client reads, and
// never closes it (the old write budget answered 1008).
func TestEndpointEchoesSixteenMiB(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	srv := startTestServer(t, Config{MaxMessageBytes: size})
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadLimit(size)
	msg := bytes.Repeat([]byte("fedcba9876543210"), size/16)
	done := make(chan error, 1)
	go func() { done <- c.WriteMessage(websocket.BinaryMessage, msg) }()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, got, err := c.ReadMessage()
	if werr := <-done; werr != nil || err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("16 MiB echo: write %v, read %v, %d bytes", werr, err, len(got))
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1000 {
		t.Fatalf("close: %v", err)
	}
	if n := srv.Stats().Closed(ReasonSlowConsumer); n != 0 {
		t.Fatalf("closed as a slow consumer")
	}
}

// TestEndpointFailsBadTextMidFrame: invalid UTF-8 fails the session as soon
// as its bytes arrive (1007), not when the frame ends.
func TestEndpointFailsBadTextMidFrame(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, Config{})
	addr := srv.Addr()
	c := conformance.Dial(t, addr, 5*time.Second)
	c.Handshake(conformance.NewRequest(addr, "/"))
	mask := conformance.RandomMask()
	part := append(bytes.Repeat([]byte("κόσμε"), 100), 0xf4, 0x90) // past U+10FFFF
	for i := range part {
		part[i] ^= mask[i%4]
	}
	c.Write(conformance.AppendHeader(nil, conformance.OpText, true, 0, true, mask, 500000))
	c.Write(part)
	c.Timeout = 2 * time.Second
	c.ExpectFail(conformance.CloseInvalidPayload, 2*time.Second)
}
