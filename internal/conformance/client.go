package conformance

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// DefaultTimeout bounds every read and write of a Client whose Timeout is 0.
const DefaultTimeout = 5 * time.Second

// maxReadPayload bounds what ReadFrame allocates for one frame.
const maxReadPayload = 64 << 20

// maxResponseBytes bounds an HTTP response header block or body.
const maxResponseBytes = 64 << 10

// Client is a raw WebSocket client over one TCP connection: it writes
// whatever bytes a test crafts and reads the server's answers, every read
// and write bounded by Timeout. Its Expect methods fail the test (Fatalf)
// on anything unexpected. A Client belongs to one test goroutine.
type Client struct {
	T       testing.TB
	Conn    net.Conn      // TCP, or TLS over TCP (DialTLS)
	Timeout time.Duration // per read or write; DefaultTimeout if 0

	r      *bufio.Reader
	closed bool // the server's end of TCP was seen closed
}

// Dial connects to addr (host:port) and returns a client for t; the
// connection is closed when t ends. TCP_NODELAY is on, so each write is
// sent at once as its own segment.
func Dial(t testing.TB, addr string, timeout time.Duration) *Client {
	t.Helper()
	return DialTLS(t, addr, timeout, nil)
}

// DialTLS is Dial over TLS with cfg (nil: plain TCP); the handshake is
// done within timeout. Each write is then sent as its own record.
func DialTLS(t testing.TB, addr string, timeout time.Duration, cfg *tls.Config) *Client {
	t.Helper()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = nc.(*net.TCPConn).SetNoDelay(true)
	if cfg != nil {
		tc := tls.Client(nc, cfg)
		_ = tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			_ = nc.Close()
			t.Fatalf("TLS handshake with %s: %v", addr, err)
		}
		_ = tc.SetDeadline(time.Time{})
		nc = tc
	}
	c := &Client{T: t, Conn: nc, Timeout: timeout, r: bufio.NewReaderSize(nc, maxResponseBytes)}
	t.Cleanup(func() { _ = nc.Close() })
	return c
}

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// Close closes the client's end of the connection.
func (c *Client) Close() { _ = c.Conn.Close() }

// TryWrite writes p in one write call within the timeout and returns the
// error, for cases where the server may legitimately close first.
func (c *Client) TryWrite(p []byte) error {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout()))
	_, err := c.Conn.Write(p)
	return err
}

// Write writes p in one write call; an error fails the test.
func (c *Client) Write(p []byte) {
	c.T.Helper()
	if err := c.TryWrite(p); err != nil {
		c.T.Fatalf("write %d bytes: %v", len(p), err)
	}
}

// WriteSplit writes p in pieces, one write call each; next returns the
// size of the next piece (values below 1 count as 1). An error fails the
// test.
func (c *Client) WriteSplit(p []byte, next func() int) {
	c.T.Helper()
	for len(p) > 0 {
		n := min(max(next(), 1), len(p))
		if err := c.TryWrite(p[:n]); err != nil {
			c.T.Fatalf("split write (%d bytes left): %v", len(p), err)
		}
		p = p[n:]
	}
}

// WriteFrame writes one frame (header and payload in one write), masked
// with a random key if masked is true.
func (c *Client) WriteFrame(op Opcode, fin bool, rsv byte, masked bool, payload []byte) {
	c.T.Helper()
	c.Write(AppendFrame(nil, op, fin, rsv, masked, payload))
}

// Send writes a well-formed masked client frame.
func (c *Client) Send(op Opcode, fin bool, payload []byte) {
	c.T.Helper()
	c.WriteFrame(op, fin, 0, true, payload)
}

// ReadResponse reads one HTTP response: status line, header block and, for
// a status other than 101, the body (Content-Length bytes, or everything
// until the server closes). After a 101 the reader stands on the first
// frame byte.
func (c *Client) ReadResponse() (*Response, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout()))
	line, err := c.readLine()
	if err != nil {
		return nil, fmt.Errorf("reading the status line: %w", err)
	}
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(rest) < 3 {
		return nil, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(rest[:3])
	if err != nil || (len(rest) > 3 && rest[3] != ' ') {
		return nil, fmt.Errorf("malformed status line %q", line)
	}
	resp := &Response{Proto: proto, Status: status, StatusText: strings.TrimPrefix(rest[3:], " ")}
	size := len(line)
	for {
		line, err := c.readLine()
		if err != nil {
			return resp, fmt.Errorf("reading the header block: %w (so far: %v)", err, resp)
		}
		if line == "" {
			break
		}
		if size += len(line); size > maxResponseBytes {
			return resp, fmt.Errorf("response header block over %d bytes", maxResponseBytes)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.TrimSpace(name) != name {
			return resp, fmt.Errorf("malformed header line %q", line)
		}
		resp.Header = append(resp.Header, HeaderLine{name, strings.Trim(value, " \t")})
	}
	if status == 101 {
		return resp, nil
	}
	if te := resp.Get("Transfer-Encoding"); te != "" {
		return resp, fmt.Errorf("refusal with Transfer-Encoding %q: the suite expects Content-Length or a body ended by close", te)
	}
	if cl := resp.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > maxResponseBytes {
			return resp, fmt.Errorf("bad Content-Length %q", cl)
		}
		resp.Body = make([]byte, n)
		if _, err := io.ReadFull(c.r, resp.Body); err != nil {
			return resp, fmt.Errorf("reading a %d-byte body: %w", n, err)
		}
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(c.r, maxResponseBytes))
	resp.Body = body
	if err != nil && !isClosedErr(err) {
		return resp, fmt.Errorf("reading the body until close: %w", err)
	}
	c.closed = true
	return resp, nil
}

func (c *Client) readLine() (string, error) {
	b, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("line over %d bytes", maxResponseBytes)
		}
		return "", err
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", fmt.Errorf("line %q does not end in CRLF", b)
	}
	return string(b[:len(b)-2]), nil
}

// Handshake sends req and requires a 101 that accepts it (see
// Response.CheckUpgrade).
func (c *Client) Handshake(req *Request) *Response {
	c.T.Helper()
	c.Write(req.Bytes())
	return c.ExpectUpgrade(req)
}

// ExpectUpgrade reads the response to req (already sent) and requires a
// 101 that accepts it.
func (c *Client) ExpectUpgrade(req *Request) *Response {
	c.T.Helper()
	resp, err := c.ReadResponse()
	if err != nil {
		c.T.Fatalf("upgrade response: %v", err)
	}
	if err := resp.CheckUpgrade(req); err != nil {
		c.T.Fatalf("upgrade response: %v", err)
	}
	return resp
}

// ExpectRefusal reads the response to a request already sent, requires
// status, then requires the server to close TCP within closeWithin.
func (c *Client) ExpectRefusal(status int, closeWithin time.Duration) *Response {
	c.T.Helper()
	resp, err := c.ReadResponse()
	if err != nil {
		c.T.Fatalf("response: %v", err)
	}
	if resp.Status != status {
		c.T.Fatalf("status %d, want %d (%v)", resp.Status, status, resp)
	}
	c.ExpectTCPClosed(closeWithin)
	return resp
}

// ReadFrame reads one frame within the timeout and unmasks its payload.
func (c *Client) ReadFrame() (Frame, error) { return c.ReadFrameWithin(c.timeout()) }

// ReadFrameWithin reads one frame within d and unmasks its payload. If
// nothing at all arrives in time the error satisfies IsTimeout.
func (c *Client) ReadFrameWithin(d time.Duration) (Frame, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(d))
	var f Frame
	var hdr [14]byte
	if _, err := io.ReadFull(c.r, hdr[:2]); err != nil {
		return f, fmt.Errorf("reading a frame header: %w", err)
	}
	f.Fin = hdr[0]&0x80 != 0
	f.Rsv = (hdr[0] >> 4) & 0x7
	f.Opcode = Opcode(hdr[0] & 0x0f)
	f.Masked = hdr[1]&0x80 != 0
	length := uint64(hdr[1] & 0x7f)
	switch length {
	case 126:
		if _, err := io.ReadFull(c.r, hdr[2:4]); err != nil {
			return f, fmt.Errorf("reading a 16-bit length: %w", err)
		}
		length = uint64(binary.BigEndian.Uint16(hdr[2:4]))
	case 127:
		if _, err := io.ReadFull(c.r, hdr[2:10]); err != nil {
			return f, fmt.Errorf("reading a 64-bit length: %w", err)
		}
		length = binary.BigEndian.Uint64(hdr[2:10])
	}
	if f.Masked {
		if _, err := io.ReadFull(c.r, f.Mask[:]); err != nil {
			return f, fmt.Errorf("reading a mask: %w", err)
		}
	}
	if length > maxReadPayload {
		return f, fmt.Errorf("frame (%v) declares %d payload bytes, more than the client reads", f, length)
	}
	f.Payload = make([]byte, length)
	if _, err := io.ReadFull(c.r, f.Payload); err != nil {
		return f, fmt.Errorf("reading a %d-byte %v payload: %w", length, f.Opcode, err)
	}
	if f.Masked {
		maskBytes(f.Payload, f.Mask)
	}
	return f, nil
}

// NextFrame reads one frame and requires it to be a valid server frame
// (CheckServerFrame).
func (c *Client) NextFrame() Frame {
	c.T.Helper()
	f, err := c.ReadFrame()
	if err != nil {
		c.T.Fatalf("%v", err)
	}
	if err := CheckServerFrame(f); err != nil {
		c.T.Fatalf("invalid frame from the server: %v", err)
	}
	return f
}

// CheckServerFrame checks the rules every frame a server sends must follow
// (RFC 6455 sections 5.1-5.5 and 7.4): unmasked, RSV bits clear (no
// extension is ever negotiated), a known opcode, control frames final and
// at most 125 bytes, and close payloads empty or a valid code with a UTF-8
// reason.
func CheckServerFrame(f Frame) error {
	switch {
	case f.Masked:
		return fmt.Errorf("masked frame (%v): a server must not mask", f)
	case f.Rsv != 0:
		return fmt.Errorf("RSV bits set (%v)", f)
	case f.Opcode > OpBinary && f.Opcode < OpClose, f.Opcode > OpPong:
		return fmt.Errorf("reserved opcode (%v)", f)
	}
	if f.Opcode.IsControl() {
		if !f.Fin {
			return fmt.Errorf("fragmented control frame (%v)", f)
		}
		if len(f.Payload) > 125 {
			return fmt.Errorf("control frame over 125 bytes (%v)", f)
		}
	}
	if f.Opcode == OpClose {
		switch {
		case len(f.Payload) == 1:
			return fmt.Errorf("close frame with a 1-byte payload")
		case len(f.Payload) >= 2:
			code, reason, _ := f.CloseCode()
			if !ValidCloseCode(code) {
				return fmt.Errorf("close frame with code %d, which may not be sent", code)
			}
			if !utf8.ValidString(reason) {
				return fmt.Errorf("close frame with a reason that is not UTF-8: %q", reason)
			}
		}
	}
	return nil
}

// ValidCloseCode reports whether code may be sent in a close frame: 1000-1003,
// 1007-1014 (1004-1006 and 1015 are reserved, RFC 6455 section 7.4.1, and
// 1016-2999 undefined) and 3000-4999.
func ValidCloseCode(code uint16) bool {
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

// ExpectFrame requires the next frame to be a final op frame carrying
// exactly payload.
func (c *Client) ExpectFrame(op Opcode, payload []byte) {
	c.T.Helper()
	f := c.NextFrame()
	if f.Opcode != op || !f.Fin {
		c.T.Fatalf("got %v, want a final %v frame of %d bytes", f, op, len(payload))
	}
	if d := Diff(f.Payload, payload); d != "" {
		c.T.Fatalf("%v payload: %s", op, d)
	}
}

// ExpectMessage requires the next message to be an op (text or binary)
// message carrying exactly payload, possibly in several frames; no control
// frame may come in between.
func (c *Client) ExpectMessage(op Opcode, payload []byte) {
	c.T.Helper()
	var got []byte
	for first := true; ; first = false {
		f := c.NextFrame()
		want := op
		if !first {
			want = OpContinuation
		}
		if f.Opcode != want {
			c.T.Fatalf("got %v, want %v (%s message of %d bytes, %d received)", f, want, op, len(payload), len(got))
		}
		got = append(got, f.Payload...)
		if f.Fin {
			break
		}
	}
	if d := Diff(got, payload); d != "" {
		c.T.Fatalf("%v message: %s", op, d)
	}
}

// ExpectClose requires the next frame to be a close frame and returns it.
// With codes, its code must be one of them; 0 in codes allows an empty
// payload.
func (c *Client) ExpectClose(codes ...uint16) Frame {
	c.T.Helper()
	f := c.NextFrame()
	if f.Opcode != OpClose {
		c.T.Fatalf("got %v, want a close frame with code %v", f, codes)
	}
	if len(codes) == 0 {
		return f
	}
	code, _, _ := f.CloseCode() // 0 for an empty payload
	for _, want := range codes {
		if code == want {
			return f
		}
	}
	c.T.Fatalf("got %v, want close code %v", f, codes)
	return f
}

// ExpectTCPClosed requires the server to close the TCP connection within
// within, sending nothing more: a read must end in EOF or a reset.
func (c *Client) ExpectTCPClosed(within time.Duration) {
	c.T.Helper()
	if c.closed {
		return
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(within))
	var buf [512]byte
	n, err := c.r.Read(buf[:])
	if n > 0 {
		extra := buf[:n]
		if more, _ := c.r.Peek(c.r.Buffered()); len(more) > 0 {
			extra = append(extra, more...)
		}
		c.T.Fatalf("server sent %d more bytes where it must only close TCP: %s", len(extra), describe(extra))
	}
	switch {
	case isClosedErr(err):
		c.closed = true
	case IsTimeout(err):
		c.T.Fatalf("TCP connection still open %v later; the server must close it", within)
	default:
		c.T.Fatalf("waiting for the server to close TCP: %v", err)
	}
}

// SkipData reads and checks the data frames the server sends before its
// next control frame, which stays to be read.
func (c *Client) SkipData() {
	c.T.Helper()
	for {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout()))
		b, err := c.r.Peek(1)
		if err != nil || Opcode(b[0]&0x0f) >= OpClose {
			return
		}
		c.NextFrame()
	}
}

// ExpectFail requires what "failing the WebSocket connection" looks like
// (RFC 6455 section 7.1.7): a close frame with code, then TCP closed by the
// server within closeWithin, with nothing else sent.
func (c *Client) ExpectFail(code uint16, closeWithin time.Duration) {
	c.T.Helper()
	c.ExpectClose(code)
	c.ExpectTCPClosed(closeWithin)
}

// CloseHandshake sends close 1000, requires the echo of 1000 and the server
// closing TCP within closeWithin.
func (c *Client) CloseHandshake(closeWithin time.Duration) {
	c.T.Helper()
	c.Send(OpClose, true, ClosePayload(CloseNormal, "bye"))
	c.ExpectClose(CloseNormal)
	c.ExpectTCPClosed(closeWithin)
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// IsTimeout reports whether err is a read or write deadline passing.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// describe renders unexpected bytes, as frames when they parse as such.
func describe(p []byte) string {
	var parts []string
	rest := p
	for len(rest) >= 2 && len(parts) < 4 {
		f, n, ok := parseFrame(rest)
		if !ok {
			break
		}
		parts = append(parts, f.String())
		rest = rest[n:]
	}
	if len(parts) > 0 && len(rest) == 0 {
		return "frames [" + strings.Join(parts, "; ") + "]"
	}
	return fmt.Sprintf("%q", truncate(p, 64))
}

func parseFrame(p []byte) (Frame, int, bool) {
	var f Frame
	if len(p) < 2 {
		return f, 0, false
	}
	f.Fin, f.Rsv, f.Opcode, f.Masked = p[0]&0x80 != 0, (p[0]>>4)&7, Opcode(p[0]&0xf), p[1]&0x80 != 0
	n, length := 2, uint64(p[1]&0x7f)
	switch length {
	case 126:
		if len(p) < 4 {
			return f, 0, false
		}
		length, n = uint64(binary.BigEndian.Uint16(p[2:])), 4
	case 127:
		if len(p) < 10 {
			return f, 0, false
		}
		length, n = binary.BigEndian.Uint64(p[2:]), 10
	}
	if f.Masked {
		if len(p) < n+4 {
			return f, 0, false
		}
		copy(f.Mask[:], p[n:])
		n += 4
	}
	if uint64(len(p)-n) < length {
		return f, 0, false
	}
	f.Payload = append([]byte(nil), p[n:n+int(length)]...)
	if f.Masked {
		maskBytes(f.Payload, f.Mask)
	}
	return f, n + int(length), true
}

// Diff describes how got differs from want, or returns "" if they are
// equal. It never dumps large payloads.
func Diff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	at := func(p []byte) []byte { return p[min(i, len(p)):min(i+16, len(p))] }
	return fmt.Sprintf("got %d bytes, want %d; first difference at offset %d (got % x, want % x)",
		len(got), len(want), i, at(got), at(want))
}
