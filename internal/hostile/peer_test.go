package hostile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
)

// behavior is what a test backend does with one accepted TCP connection:
// usually pc.upgrade, then something honest or evil. It runs on the
// connection's own goroutine; the connection closes when it returns.
type behavior func(pc *peerConn)

// peerServer is a WebSocket backend in the test process, a goroutine per
// connection. Its behavior applies to connections accepted after it is
// set; dropAll closes the current ones (the gateway then dials new ones).
// Safe for concurrent use.
type peerServer struct {
	t    testing.TB
	name string
	ln   net.Listener
	wg   sync.WaitGroup

	upgraded atomic.Int64 // connections that got their 101
	armedN   atomic.Int64 // connections waiting in armed for their trigger

	mu         sync.Mutex
	conns      map[*peerConn]struct{}
	behave     behavior
	attacked   []*peerConn // connections an attack was aimed at
	violations []string    // what the gateway sent that it must not have
}

// startPeer listens on a free loopback port; the server is closed when t ends.
func startPeer(t testing.TB, name string, b behavior) *peerServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peerServer{t: t, name: name, ln: ln, conns: map[*peerConn]struct{}{}, behave: b}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.close)
	return p
}

// url is the backend URL to give the gateway.
func (p *peerServer) url() string { return "ws://" + p.ln.Addr().String() + "/" }

// set changes the behavior of connections accepted from now on.
func (p *peerServer) set(b behavior) {
	p.mu.Lock()
	p.behave = b
	p.mu.Unlock()
}

// dropAll closes every current connection from the backend's side.
func (p *peerServer) dropAll() {
	p.mu.Lock()
	conns := make([]*peerConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.close()
	}
}

// close stops listening, closes every connection and waits for their goroutines.
func (p *peerServer) close() {
	_ = p.ln.Close()
	p.dropAll()
	p.wg.Wait()
}

// violate records something the gateway sent this backend that it must not have.
func (p *peerServer) violate(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.violations) < 20 {
		p.violations = append(p.violations, fmt.Sprintf(format, args...))
	}
}

func (p *peerServer) takeViolations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.violations
	p.violations = nil
	return v
}

func (p *peerServer) attackedConns() []*peerConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*peerConn(nil), p.attacked...)
}

func (p *peerServer) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		pc := &peerConn{srv: p, c: c.(*net.TCPConn), r: bufio.NewReaderSize(c, 64<<10), done: make(chan struct{}), gone: make(chan struct{})}
		p.mu.Lock()
		p.conns[pc] = struct{}{}
		b := p.behave
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(pc, b)
	}
}

func (p *peerServer) serve(pc *peerConn, b behavior) {
	defer p.wg.Done()
	defer func() {
		pc.close()
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
	}()
	b(pc)
}

// peerConn is one backend-side connection. Writes are serialized; reads
// belong to the behavior's goroutine.
type peerConn struct {
	srv *peerServer
	c   *net.TCPConn
	r   *bufio.Reader

	wmu sync.Mutex

	closeOnce sync.Once
	done      chan struct{} // closed when we close the connection

	goneOnce sync.Once
	gone     chan struct{} // closed when the gateway closed or failed the connection
	goneWhy  string        // set before gone is closed

	attackedAt time.Time   // set once by markAttacked
	stalled    atomic.Bool // a write made no progress for a whole second
}

func (pc *peerConn) close() {
	pc.closeOnce.Do(func() {
		close(pc.done)
		_ = pc.c.Close()
	})
}

// closedByUs reports whether we closed the connection ourselves.
func (pc *peerConn) closedByUs() bool {
	select {
	case <-pc.done:
		return true
	default:
		return false
	}
}

// markGone records that the gateway ended the connection (close frame,
// EOF, reset or broken pipe), unless we closed it first.
func (pc *peerConn) markGone(why string) {
	if pc.closedByUs() {
		return
	}
	pc.goneOnce.Do(func() {
		pc.goneWhy = why
		close(pc.gone)
	})
}

// isGone reports whether the gateway ended the connection.
func (pc *peerConn) isGone() bool {
	select {
	case <-pc.gone:
		return true
	default:
		return false
	}
}

// markAttacked records the start of an attack on this connection.
func (pc *peerConn) markAttacked() {
	pc.srv.mu.Lock()
	pc.attackedAt = time.Now()
	pc.srv.attacked = append(pc.srv.attacked, pc)
	pc.srv.mu.Unlock()
}

// noteErr classifies a read or write error.
func (pc *peerConn) noteErr(err error) {
	if err != nil && peerClosed(err) {
		pc.markGone(err.Error())
	}
}

// upgrade reads the gateway's upgrade request and answers 101; extra is
// sent in the same write, right after the response.
func (pc *peerConn) upgrade(extra []byte) error {
	_ = pc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var key string
	for n := 0; ; n++ {
		line, err := pc.r.ReadString('\n')
		if err != nil {
			return err
		}
		if n > 100 {
			return errors.New("upgrade request too long")
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Sec-WebSocket-Key") {
			key = strings.TrimSpace(value)
		}
	}
	_ = pc.c.SetReadDeadline(time.Time{})
	if key == "" {
		pc.srv.violate("upgrade request without Sec-WebSocket-Key")
		return errors.New("no key")
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + conformance.AcceptFor(key) + "\r\n\r\n"
	if err := pc.write(append([]byte(resp), extra...), 5*time.Second); err != nil {
		return err
	}
	pc.srv.upgraded.Add(1)
	return nil
}

// write writes b within d. A timeout marks the connection stalled.
func (pc *peerConn) write(b []byte, d time.Duration) error {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	_ = pc.c.SetWriteDeadline(time.Now().Add(d))
	_, err := pc.c.Write(b)
	if isTimeout(err) {
		pc.stalled.Store(true)
	}
	pc.noteErr(err)
	return err
}

// writeFrame writes one unmasked server frame.
func (pc *peerConn) writeFrame(op conformance.Opcode, fin bool, payload []byte) error {
	return pc.write(conformance.AppendFrame(nil, op, fin, 0, false, payload), 5*time.Second)
}

// readFrame reads one frame from the gateway (no deadline) and checks
// what a client-role peer must send: masked, no RSV bits, known opcode.
func (pc *peerConn) readFrame() (Frame, error) {
	f, err := readFrame(pc.r)
	if err != nil {
		pc.noteErr(err)
		if errors.Is(err, errFrameTooBig) {
			pc.srv.violate("the gateway sent: %v", err)
		}
		return f, err
	}
	if err := conformance.CheckServerFrame(Frame{Fin: f.Fin, Rsv: f.Rsv, Opcode: f.Opcode, Payload: f.Payload}); err != nil {
		pc.srv.violate("invalid frame from the gateway: %v", err)
	}
	if !f.Masked {
		pc.srv.violate("unmasked frame from the gateway: %v", f)
	}
	return f, nil
}

// drain reads and discards until the gateway ends the connection (or we
// close it), answering pings and close frames.
func (pc *peerConn) drain() {
	for {
		f, err := pc.readFrame()
		if err != nil {
			return
		}
		switch f.Opcode {
		case opPing:
			_ = pc.writeFrame(opPong, true, f.Payload)
		case opClose:
			pc.markGone("close frame")
			_ = pc.writeFrame(opClose, true, f.Payload[:min(2, len(f.Payload))])
			return
		}
	}
}

// hang never answers the upgrade: it reads and discards whatever comes
// until either side closes.
func hang(pc *peerConn) {
	_, _ = io.Copy(io.Discard, pc.c)
	pc.markGone("EOF while hanging")
}

// echoHooks customize tagEcho.
type echoHooks struct {
	// onMessage sees every complete data message with the tag the
	// connection currently holds (after a "tag:" message updated it); it
	// returns true if it answered (or deliberately did not).
	onMessage func(pc *peerConn, tag string, msg []byte) bool
}

// tagEcho is the honest backend: after the upgrade it answers every data
// message with "<current tag>|<message>", where the current tag is the
// last message starting with "tag:" this connection received. Pings are
// answered, close frames echoed. Anything a client of the suite never
// sends (a message without one of the prefixes "tag:", "rt:", "cmd:") is
// recorded as a violation: it can only be garbage or another peer's bytes.
func tagEcho(h echoHooks) behavior {
	return func(pc *peerConn) {
		if pc.upgrade(nil) != nil {
			return
		}
		var tag string
		var msg []byte
		var inMessage bool
		for {
			f, err := pc.readFrame()
			if err != nil {
				return
			}
			switch f.Opcode {
			case opPing:
				_ = pc.writeFrame(opPong, true, f.Payload)
				continue
			case opPong:
				continue
			case opClose:
				pc.markGone("close frame")
				_ = pc.writeFrame(opClose, true, f.Payload[:min(2, len(f.Payload))])
				return
			case opCont:
				if !inMessage {
					pc.srv.violate("continuation frame without a message: %v", f)
					return
				}
			case opText, opBinary:
				if inMessage {
					pc.srv.violate("new message inside a fragmented one: %v", f)
					return
				}
				msg = msg[:0]
			default:
				pc.srv.violate("reserved opcode from the gateway: %v", f)
				return
			}
			msg = append(msg, f.Payload...)
			inMessage = !f.Fin
			if inMessage {
				if len(msg) > maxTestPayload {
					pc.srv.violate("message over %d bytes", maxTestPayload)
					return
				}
				continue
			}
			if !hasAnyPrefix(msg, "tag:", "rt:", "cmd:") {
				pc.srv.violate("unexpected message from the gateway: %q", truncate(msg, 48))
			}
			if bytes.HasPrefix(msg, []byte("tag:")) {
				tag = string(msg)
			}
			if h.onMessage != nil && h.onMessage(pc, tag, msg) {
				continue
			}
			if pc.writeFrame(opText, true, append([]byte(tag+"|"), msg...)) != nil {
				return
			}
		}
	}
}

func hasAnyPrefix(b []byte, prefixes ...string) bool {
	for _, p := range prefixes {
		if bytes.HasPrefix(b, []byte(p)) {
			return true
		}
	}
	return false
}

// honest is tagEcho without hooks.
func honest() behavior { return tagEcho(echoHooks{}) }

// armed upgrades, then waits (reading nothing) until trigger is closed,
// then runs attack.
func armed(trigger <-chan struct{}, attack behavior) behavior {
	return func(pc *peerConn) {
		if pc.upgrade(nil) != nil {
			return
		}
		pc.srv.armedN.Add(1)
		select {
		case <-trigger:
			attack(pc)
		case <-pc.done:
			pc.srv.armedN.Add(-1)
		}
	}
}

// flood writes chunk over and over for dur (or until ctx ends or the
// gateway ends the connection). A write that makes no progress for a
// second marks the connection stalled (the gateway stopped reading it);
// the flood goes on trying until dur.
func (pc *peerConn) flood(ctx context.Context, chunk []byte, dur time.Duration) {
	end := time.Now().Add(dur)
	for time.Now().Before(end) && ctx.Err() == nil && !pc.closedByUs() {
		err := pc.write(chunk, time.Second)
		if err != nil && !isTimeout(err) {
			return
		}
	}
}

// pingBatch is n unmasked pings of 125 bytes in one buffer.
func pingBatch(n int) []byte {
	payload := bytes.Repeat([]byte{'p'}, 125)
	var b []byte
	for range n {
		b = conformance.AppendFrame(b, opPing, true, 0, false, payload)
	}
	return b
}

// spawn runs f on a goroutine the server's close waits for.
func (pc *peerConn) spawn(f func()) {
	pc.srv.wg.Add(1)
	go func() { defer pc.srv.wg.Done(); f() }()
}

// after waits d, or returns false if the connection closed first.
func (pc *peerConn) after(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-pc.done:
		return false
	}
}
