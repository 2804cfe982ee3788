package hostile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
)

// Frame is one WebSocket frame, payload unmasked.
type Frame = conformance.Frame

const (
	opCont   = conformance.OpContinuation
	opText   = conformance.OpText
	opBinary = conformance.OpBinary
	opClose  = conformance.OpClose
	opPing   = conformance.OpPing
	opPong   = conformance.OpPong
)

// maxTestPayload bounds what the test peers allocate for one frame: a
// frame declaring more is an error of its own (the gateway relayed or sent
// something it must have refused).
const maxTestPayload = 16 << 20

// errFrameTooBig is a frame header declaring more than maxTestPayload.
var errFrameTooBig = errors.New("frame declares more payload than any test peer accepts")

// readFrame reads one frame from r and unmasks its payload.
func readFrame(r *bufio.Reader) (Frame, error) {
	var f Frame
	var hdr [10]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return f, err
	}
	f.Fin = hdr[0]&0x80 != 0
	f.Rsv = (hdr[0] >> 4) & 7
	f.Opcode = conformance.Opcode(hdr[0] & 0xf)
	f.Masked = hdr[1]&0x80 != 0
	length := uint64(hdr[1] & 0x7f)
	switch length {
	case 126:
		if _, err := io.ReadFull(r, hdr[2:4]); err != nil {
			return f, err
		}
		length = uint64(binary.BigEndian.Uint16(hdr[2:4]))
	case 127:
		if _, err := io.ReadFull(r, hdr[2:10]); err != nil {
			return f, err
		}
		length = binary.BigEndian.Uint64(hdr[2:10])
	}
	if f.Masked {
		if _, err := io.ReadFull(r, f.Mask[:]); err != nil {
			return f, err
		}
	}
	if length > maxTestPayload {
		return f, fmt.Errorf("%v %w (%d bytes)", f.Opcode, errFrameTooBig, length)
	}
	f.Payload = make([]byte, length)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return f, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= f.Mask[i&3]
		}
	}
	return f, nil
}

// peerClosed reports whether err says the other end closed or reset the
// connection (as opposed to a deadline, or our own close).
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wsClient is a raw WebSocket client connection to the gateway. One
// goroutine uses it at a time.
type wsClient struct {
	conn *net.TCPConn
	r    *bufio.Reader
}

// refusedError is an upgrade answered with something other than 101.
type refusedError struct {
	Status int
	Line   string
}

func (e *refusedError) Error() string { return fmt.Sprintf("upgrade refused: %q", e.Line) }

// dialOpts tune dialWS.
type dialOpts struct {
	timeout  time.Duration // dial, request and response; 5 s if 0
	rcvBuf   int           // SO_RCVBUF set before connecting (a client that reads little), 0 = default
	pipeline []byte        // bytes sent in the same write as the request
}

// dialWS connects to addr and upgrades path.
func dialWS(addr, path string, o dialOpts) (*wsClient, error) {
	if o.timeout <= 0 {
		o.timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: o.timeout}
	if o.rcvBuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.rcvBuf)
			})
			return errors.Join(err, serr)
		}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := nc.(*net.TCPConn)
	_ = tc.SetNoDelay(true)
	c := &wsClient{conn: tc, r: bufio.NewReaderSize(tc, 64<<10)}
	req := conformance.NewRequest(addr, path)
	_ = tc.SetDeadline(time.Now().Add(o.timeout))
	if _, err := tc.Write(append(req.Bytes(), o.pipeline...)); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("writing the upgrade request: %w", err)
	}
	status, line, accept, err := readResponseHead(c.r)
	if err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("reading the upgrade response: %w", err)
	}
	if status != 101 {
		_ = tc.Close()
		return nil, &refusedError{Status: status, Line: line}
	}
	if want := conformance.AcceptFor(req.Key()); accept != want {
		_ = tc.Close()
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", accept, want)
	}
	_ = tc.SetDeadline(time.Time{})
	return c, nil
}

// readResponseHead reads an HTTP response's status line and header block
// and returns the status, the status line and Sec-WebSocket-Accept.
func readResponseHead(r *bufio.Reader) (status int, statusLine, accept string, err error) {
	for i := 0; ; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, statusLine, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if i == 0 {
			statusLine = line
			if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
				return 0, line, "", fmt.Errorf("malformed status line %q", line)
			}
			continue
		}
		if line == "" {
			return status, statusLine, accept, nil
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Sec-WebSocket-Accept") {
			accept = strings.TrimSpace(value)
		}
		if i > 100 {
			return 0, statusLine, "", errors.New("response header block too long")
		}
	}
}

// send writes one masked client frame.
func (c *wsClient) send(op conformance.Opcode, fin bool, payload []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.conn.Write(conformance.AppendFrame(nil, op, fin, 0, true, payload))
	return err
}

// readFrame reads one frame within d.
func (c *wsClient) readFrame(d time.Duration) (Frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	return readFrame(c.r)
}

func (c *wsClient) close() { _ = c.conn.Close() }

// foreignError is a frame that reached a session but was not its own: a
// reply carrying another session's tag, or a continuation of a message the
// session never started. It is the isolation failure the suite hunts.
type foreignError struct {
	Session string // the session's tag
	Frame   Frame
	Why     string
}

func (e *foreignError) Error() string {
	return fmt.Sprintf("session %s received a frame that is not its own (%s): %v fin=%v payload %q",
		e.Session, e.Why, e.Frame.Opcode, e.Frame.Fin, truncate(e.Frame.Payload, 64))
}

// closedError is the gateway ending a session: a close frame (Code, 0 if
// empty) or the TCP connection ending (Code -1).
type closedError struct {
	Code int
	Err  error
}

func (e *closedError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("session ended without a close frame: %v", e.Err)
	}
	return fmt.Sprintf("session closed by the gateway with code %d", e.Code)
}

// session is a client session that knows its tag and checks that every
// data frame it receives carries it.
type session struct {
	*wsClient
	tag       string // "tag:<id>"
	inMessage bool   // we received a non-final data frame of our own message
}

// openSession upgrades path and does the first round trip, "tag:<id>",
// which tells the backend whose session this is.
func openSession(addr, path, id string, o dialOpts) (*session, error) {
	c, err := dialWS(addr, path, o)
	if err != nil {
		return nil, err
	}
	s := &session{wsClient: c, tag: "tag:" + id}
	if err := s.roundTrip(s.tag, 5*time.Second); err != nil {
		c.close()
		return nil, err
	}
	return s, nil
}

// check fails a data frame that is not this session's.
func (s *session) check(f Frame) error {
	switch f.Opcode {
	case opCont:
		if !s.inMessage {
			return &foreignError{Session: s.tag, Frame: f, Why: "continuation of a message it never started"}
		}
		if bytes.HasPrefix(f.Payload, []byte("tag:")) && !bytes.HasPrefix(f.Payload, []byte(s.tag+"|")) {
			return &foreignError{Session: s.tag, Frame: f, Why: "another session's tag"}
		}
	case opText, opBinary:
		if s.inMessage {
			return fmt.Errorf("session %s: a new message inside an unfinished one (%v)", s.tag, f)
		}
		if !bytes.HasPrefix(f.Payload, []byte(s.tag+"|")) {
			return &foreignError{Session: s.tag, Frame: f, Why: "not tagged " + s.tag}
		}
	}
	s.inMessage = !f.Fin
	return nil
}

// next returns the next data frame within d: pings are answered, pongs
// skipped, every data frame checked; a close frame or the end of TCP is a
// *closedError.
func (s *session) next(d time.Duration) (Frame, error) {
	deadline := time.Now().Add(d)
	for {
		f, err := s.readFrame(time.Until(deadline))
		if err != nil {
			if peerClosed(err) {
				return f, &closedError{Code: -1, Err: err}
			}
			return f, err
		}
		switch f.Opcode {
		case opPing:
			_ = s.send(opPong, true, f.Payload)
			continue
		case opPong:
			continue
		case opClose:
			code := 0
			if len(f.Payload) >= 2 {
				code = int(binary.BigEndian.Uint16(f.Payload))
			}
			return f, &closedError{Code: code}
		}
		return f, s.check(f)
	}
}

// roundTrip sends msg as a text message and waits, within d, for the reply
// "<tag>|msg"; other frames of ours (late transcripts, say) are skipped.
func (s *session) roundTrip(msg string, d time.Duration) error {
	if err := s.send(opText, true, []byte(msg)); err != nil {
		return fmt.Errorf("send %q: %w", truncate([]byte(msg), 40), err)
	}
	want := s.tag + "|" + msg
	deadline := time.Now().Add(d)
	for {
		f, err := s.next(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("waiting for the reply to %q: %w", truncate([]byte(msg), 40), err)
		}
		if f.Fin && f.Opcode != opCont && string(f.Payload) == want {
			return nil
		}
	}
}

// closeSession runs the close handshake (within 2 s), checking every data
// frame that still arrives, then closes TCP. Only a foreign frame is an
// error: a gateway that cuts TCP instead of answering is not this
// helper's concern.
func (s *session) closeSession() error {
	defer s.close()
	if err := s.send(opClose, true, conformance.ClosePayload(1000, "")); err != nil {
		return nil
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := s.next(time.Until(deadline))
		var fe *foreignError
		switch {
		case errors.As(err, &fe):
			return err
		case err != nil:
			return nil
		}
	}
}

// upgradeRequest is a valid upgrade request for path on the gateway.
func upgradeRequest(addr, path string) []byte {
	return conformance.NewRequest(addr, path).Bytes()
}

func truncate(p []byte, n int) []byte {
	if len(p) > n {
		return p[:n]
	}
	return p
}
