package server

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/looptls"
	"github.com/wsgate/wsgate/internal/proxyproto"
	"github.com/wsgate/wsgate/internal/wheel"
)

type sessionState uint8

const (
	stateHandshaking sessionState = iota // reading the upgrade request
	stateOpen                            // upgraded; frames flow both ways
	stateFailing                         // a protocol error: not read any more; the handler drains, then the close goes out
	stateClosing                         // we sent (or owe) a close frame; waiting for the reply
	stateClosed                          // TCP is closing or closed; nothing more happens
)

var stateNames = [...]string{"handshaking", "open", "failing", "closing", "closed"}

func (st sessionState) String() string { return stateNames[st] }

type sessionFlags uint16

const (
	flagRefuseBusy      sessionFlags = 1 << iota // shutting down: answer 503
	flagPingOutstanding                          // we pinged and nothing has arrived since
	flagUpgraded                                 // the 101 went out (counted in Stats.Sessions)
	flagHold                                     // frames stay buffered until Release (waiting for a backend)
	flagOutMidFrame                              // a frame toward the client is partly written: no control frame may go out
	flagCloseOwed                                // a close frame waits for that frame to end
	flagPongOwed                                 // a pong waits for that frame to end (pongPayload)
	flagAwaitProxy                               // the PROXY header has not been read yet
	flagRefuseTooMany                            // past a per-IP limit: answer 429 (retryAfter)
	flagAdmitted                                 // counted in the per-IP limiter: release at close
	flagRefuseProxy                              // no valid PROXY header from a trusted peer: answer 400
	flagProtocolSet                              // the handler chose the subprotocol (SetSubprotocol)
)

// Session is one client connection, from accept to close. All of it is
// owned by its shard's loop: methods are Loop-only unless they say otherwise.
type Session struct {
	conn     gnet.Conn
	shard    *Shard
	handler  SessionHandler // set by the Handler's Upgrade
	id       uint64         // unique per server, for logs
	state    sessionState   // see the state constants
	flags    sessionFlags   // see the flag constants
	reason   CloseReason    // why it ended (set by whoever ends it)
	timer    wheel.Timer    // the one deadline this session has at a time
	lastRead int64          // shard clock at the last inbound bytes, ns
	pingAt   int64          // shard clock when the outstanding ping went out, ns
	holdEnd  int64          // shard clock: a hold ends with close 1013 at this time
	need     int            // inbound bytes needed before parsing is worth trying

	client     netip.AddrPort // the client: the PROXY header's source, or the TCP peer
	protocol   string         // the subprotocol the handler chose (flagProtocolSet)
	retryAfter time.Duration  // flagRefuseTooMany: when to come back

	scanner codec.HeaderScanner // handshake: end of the header block
	reader  codec.FrameReader   // frames from the client

	failure       codec.ProtocolError // stateFailing: the close to send when the drain ends
	drainEnd      int64               // stateFailing: shard clock when the drain ends at the latest
	drainActivity int64               // stateFailing: shard clock of the last frame the handler relayed
	closeCode     ws.StatusCode       // flagCloseOwed: the close frame owed
	closeReason   string
	pongPayload   [125]byte // flagPongOwed: the latest ping's payload
	pongLen       uint8

	// Per-session traffic, for the access log (Config.OnSessionEnd).
	started   int64         // shard clock at accept
	uri       string        // request target, kept once upgraded
	framesIn  int64         // frames received from the client
	framesOut int64         // frames written to the client
	bytesIn   int64         // payload bytes received
	bytesOut  int64         // payload bytes written
	closeSent ws.StatusCode // close code we sent the client, 0 if none
	closeRecv ws.StatusCode // close code the client sent, 0 if none
}

// ID is the session's server-unique id.
func (s *Session) ID() uint64 { return s.id }

// SetSubprotocol makes protocol the subprotocol the 101 names ("": none),
// instead of the server's own choice among Config.Subprotocols. The
// handler calls it during Upgrade.
func (s *Session) SetSubprotocol(protocol string) {
	s.protocol = protocol
	s.flags |= flagProtocolSet
}

// Shard is the shard (event loop) the session lives on.
func (s *Session) Shard() *Shard { return s.shard }

// Conn is the client's gnet connection: for the relay's flow control only
// (its queue, pausing the backend while it is full). Loop-only.
func (s *Session) Conn() gnet.Conn { return s.conn }

// Open reports whether the session is upgraded and neither failing nor
// closing: frames may be written to it.
func (s *Session) Open() bool { return s.state == stateOpen }

// Write sends one whole data frame (a fragment if fin is false) to the
// client. The client's queue is the handler's business (see the relay's
// flow control; Echo pauses the session past the high watermark).
func (s *Session) Write(op ws.OpCode, fin bool, payload []byte) error {
	if s.state != stateOpen && s.state != stateFailing {
		return errSessionGone
	}
	if err := s.shard.writer.Frame(s.conn, ws.Header{Fin: fin, OpCode: op}, payload, false); err != nil {
		return err // gnet closed the connection; onClose has run
	}
	s.countOut(len(payload))
	return nil
}

// WritePiece relays a piece of a frame to the client as it arrived (the
// relay's cut-through): the first piece with the frame's header, later
// ones as they come. While a frame is partly written no control frame
// may go out: a pong or close owed meanwhile follows the frame's end.
func (s *Session) WritePiece(pc codec.Piece) error {
	// Once closing, only the frame already begun toward the client may
	// end: a later piece of a frame whose start was refused would go out
	// headerless, behind the close frame.
	if s.state == stateClosed || (s.state == stateClosing && s.flags&flagOutMidFrame == 0) {
		return errSessionGone
	}
	var err error
	if pc.First {
		_, err = s.shard.writer.Start(s.conn, pc.Header, pc.Payload, false)
		if err == nil {
			s.countOut(0)
		}
	} else {
		err = s.shard.writer.Continue(s.conn, pc.Payload, [4]byte{}, pc.Offset, false)
	}
	if err != nil {
		return err // gnet closed the connection; onClose has run
	}
	s.addBytesOut(len(pc.Payload))
	if !pc.Last {
		s.flags |= flagOutMidFrame
		return nil
	}
	s.flags &^= flagOutMidFrame
	s.writeOwed()
	return nil
}

// OutMidFrame reports whether a frame toward the client is partly written.
func (s *Session) OutMidFrame() bool { return s.flags&flagOutMidFrame != 0 }

// errSessionGone is the answer to a write on a session that is closing or
// closed.
var errSessionGone = errors.New("server: session closing or closed")

// writeOwed writes the pong and close frame that waited for a frame to end.
func (s *Session) writeOwed() {
	if s.flags&flagPongOwed != 0 {
		s.flags &^= flagPongOwed
		s.writePong(s.pongPayload[:s.pongLen])
	}
	if s.flags&flagCloseOwed != 0 {
		s.flags &^= flagCloseOwed
		s.writeClose(s.closeCode, s.closeReason)
	}
}

// CloseFor starts the close handshake with code and reason; the
// connection ends when the client answers or after the close timeout. why
// is the reason the session ends, for logs and metrics.
func (s *Session) CloseFor(code ws.StatusCode, reason string, why CloseReason) {
	s.startClose(code, reason, why)
}

// Abort ends the connection at once, without a close frame (the peer sees
// the TCP connection end): for a session whose frame toward the client
// can never be finished, or a handler that must drop its client.
func (s *Session) Abort(why CloseReason) {
	if s.state == stateClosed {
		return
	}
	s.setReason(why)
	s.state = stateClosed
	s.logEnd()
	_ = s.conn.Close()
}

// ClosePolicySlowConsumer is the close code sent to a client that stopped
// reading for the stall timeout: 1008 (policy violation).
const ClosePolicySlowConsumer = codec.ClosePolicyViolation

func (s *Session) startClose(code ws.StatusCode, reason string, why CloseReason) {
	if s.state != stateOpen && s.state != stateFailing {
		return
	}
	s.flags &^= flagHold // the client's close reply must be read
	s.shard.Unpause(s.conn)
	s.state = stateClosing
	s.setReason(why)
	if s.flags&flagOutMidFrame != 0 {
		s.flags |= flagCloseOwed
		s.closeCode, s.closeReason = code, reason
	} else {
		s.writeClose(code, reason)
	}
	if s.state == stateClosing { // the write did not close it under us
		s.shard.wheel.Schedule(&s.timer, s.shard.now()+int64(s.shard.srv.cfg.CloseTimeout))
	}
}

func (s *Session) writeClose(code ws.StatusCode, reason string) {
	if err := s.shard.writer.Close(s.conn, code, reason, false); err != nil {
		return // gnet closed the connection; onClose has run
	}
	s.closeSent = code
	n := 0
	if code != codec.CloseNoStatus && code != 0 {
		n = 2 + len(codec.TruncateUTF8(reason, codec.MaxCloseReason))
	}
	s.countOut(n)
}

// shutdown is the server going away: 1001 to upgraded sessions, the end to
// those still handshaking.
func (s *Session) shutdown() {
	switch s.state {
	case stateHandshaking:
		s.flags |= flagRefuseBusy // answer 503 if the request completes first
		s.setReason(ReasonShutdown)
		_ = s.conn.Close()
	case stateOpen, stateFailing:
		s.startClose(codec.CloseGoingAway, "server shutting down", ReasonShutdown)
	}
}

// onTraffic handles whatever has arrived.
func (s *Session) onTraffic() gnet.Action {
	s.lastRead = s.shard.now()
	switch s.state {
	case stateHandshaking:
		return s.readHandshake()
	case stateOpen, stateClosing:
		if s.shard.Paused(s.conn) {
			// gnet read once after the connection's queue emptied: the
			// bytes stay buffered until it resumes.
			s.shard.Repause(s.conn)
			return gnet.None
		}
		return s.readFrames()
	case stateFailing:
		// Nothing more is read; the drain decides the end. gnet read
		// once after the queue emptied: drop it and stop reading again,
		// or a client flooding after its protocol error would grow the
		// inbound buffer for the whole drain.
		_, _ = s.conn.Discard(-1)
		s.shard.Repause(s.conn)
		return gnet.None
	default:
		_, _ = s.conn.Discard(-1)
		return gnet.None
	}
}

// readHandshake parses the upgrade request once its header block is
// complete; frames sent right behind it stay buffered and are read next.
func (s *Session) readHandshake() gnet.Action {
	c, srv := s.conn, s.shard.srv
	if s.flags&flagAwaitProxy != 0 {
		if err := s.readProxyHeader(); errors.Is(err, proxyproto.ErrNeedMore) {
			return gnet.None
		}
	}
	buf, _ := c.Peek(-1)
	end, err := s.scanner.Scan(buf, srv.cfg.MaxHeaderBytes)
	if errors.Is(err, codec.ErrNeedMore) {
		return gnet.None
	}
	if err != nil {
		return s.refuse(err)
	}
	// Refusals decided earlier are answered once the request is whole
	// (a close with its bytes unread would reset the connection and lose
	// the answer), or when refuseLinger has passed.
	if e := s.decidedRefusal(); e != nil {
		return s.refuse(e)
	}
	req, err := codec.ParseUpgrade(buf[:end])
	if err != nil {
		return s.refuse(err)
	}
	h, err := srv.cfg.Handler.Upgrade(s, req)
	if err != nil {
		return s.refuse(err)
	}
	s.handler = h
	sh := s.shard
	w := sh.writer
	protocol := codec.SelectProtocol(srv.cfg.Subprotocols, req.Protocols)
	if s.flags&flagProtocolSet != 0 {
		protocol = s.protocol
	}
	reply := codec.AppendAccept(w.Scratch(), req.Key, protocol)
	if _, err := c.Write(reply); err != nil {
		return gnet.None // closed under us; onClose has run
	}
	_, _ = c.Discard(end)
	s.state = stateOpen
	s.flags |= flagUpgraded
	if srv.cfg.OnSessionEnd != nil {
		s.uri = req.URI
	}
	srv.stats.Upgraded.Add(1)
	srv.stats.Sessions.Add(1)
	sh.Sessions.Add(1)
	s.armIdle()
	s.handler.Opened()
	if s.state == stateClosed {
		return gnet.Close
	}
	if c.InboundBuffered() > 0 {
		return s.readFrames()
	}
	return gnet.None
}

// refuse answers the upgrade with an HTTP error and closes.
func (s *Session) refuse(err error) gnet.Action {
	var herr *codec.HandshakeError
	if !errors.As(err, &herr) {
		herr = &codec.HandshakeError{Status: 500, Reason: "internal error"}
	}
	srv := s.shard.srv
	srv.stats.countRefusal(herr.Status) // before the client can see it
	_, _ = s.conn.Write(codec.AppendHTTPError(s.shard.writer.Scratch(), herr))
	s.setReason(ReasonHandshakeRefused)
	s.state = stateClosed
	s.logEnd(zap.Int("status", herr.Status), zap.String("detail", herr.Reason))
	return gnet.Close
}

// Hold keeps the client's frames buffered (unread) until Release, for at
// most timeout; then the session is closed 1013. Past the flow window of
// buffered bytes the client is not read either.
func (s *Session) Hold(timeout time.Duration) {
	s.flags |= flagHold
	s.holdEnd = s.shard.now() + int64(timeout)
	s.shard.wheel.Schedule(&s.timer, s.holdEnd)
}

// Release ends a hold and reads what arrived meanwhile, after the current
// callback.
func (s *Session) Release() {
	if s.flags&flagHold == 0 {
		return
	}
	s.flags &^= flagHold
	s.armIdle()
	s.shard.Unpause(s.conn)
	s.shard.Defer(s.readBuffered)
}

// readEarly reads what arrived with a TLS handshake: the request may sit
// whole in crypto/tls's own buffer, which no readable event will announce,
// hence Peek (it decrypts) rather than InboundBuffered. Deferred work.
func (s *Session) readEarly() {
	if s.state != stateHandshaking {
		return
	}
	if buf, _ := s.conn.Peek(-1); len(buf) > 0 && s.onTraffic() == gnet.Close {
		_ = s.conn.Close()
	}
}

// readBuffered reads frames that arrived while the session was not read
// (held, paused). Deferred work: gnet is not reading them for us.
func (s *Session) readBuffered() {
	if (s.state == stateOpen || s.state == stateClosing) && s.conn.InboundBuffered() > 0 {
		s.need = 0
		if s.readFrames() == gnet.Close {
			_ = s.conn.Close()
		}
	}
}

// pieceMax bounds how much of the inbound buffer one piece takes: the most
// a relay writes toward a peer past its high watermark before it pauses.
const pieceMax = 64 << 10

// readFrames reads the buffered frames piece by piece: control frames are
// answered here, data pieces go to the handler, until the buffer is used
// up or reading must stop (held, paused, failing, closed). Only part of a
// header or of a control frame stays buffered, so what the session holds
// is bounded by pieceMax.
func (s *Session) readFrames() gnet.Action {
	c := s.conn
	if s.flags&flagHold != 0 {
		if c.InboundBuffered() > s.shard.srv.cfg.FlowWindow {
			s.shard.Pause(c, s) // Release resumes it
		}
		return gnet.None
	}
	if s.need > 0 && c.InboundBuffered() < s.need {
		return gnet.None
	}
	buf, _ := c.Peek(-1)
	off := 0
	s.need = 0
	action := gnet.None
	for off < len(buf) {
		end := min(len(buf), off+pieceMax)
		pc, n, err := s.reader.Next(buf[off:end])
		if err != nil {
			action = s.failProtocol(err)
			break
		}
		if n == 0 { // only ever at the end of buf: a piece needs 15 bytes at most
			s.need = s.reader.Need()
			break
		}
		off += n
		if !s.onPiece(pc) || s.state == stateClosed {
			break
		}
	}
	_ = s.shard.writer.Flush() // what the pieces gathered toward their peer; before Discard frees them
	if s.state == stateClosed {
		return gnet.Close
	}
	if off > 0 { // Discard(0) would drop everything (gnet: n <= 0 means all)
		_, _ = c.Discard(off)
	}
	return action
}

// onPiece handles one piece; false stops reading.
func (s *Session) onPiece(pc codec.Piece) bool {
	s.flags &^= flagPingOutstanding // anything at all proves the peer is alive
	if pc.First {
		add(&s.shard.traffic.framesIn, 1)
		s.framesIn++
	}
	add(&s.shard.traffic.bytesIn, int64(len(pc.Payload)))
	s.bytesIn += int64(len(pc.Payload))
	switch pc.Header.OpCode {
	case ws.OpPing:
		if s.state == stateOpen {
			s.pong(pc.Payload)
		}
		return !s.shard.Paused(s.conn)
	case ws.OpPong:
		return true // unsolicited pongs are fine (RFC 6455 5.5.3)
	case ws.OpClose:
		s.onCloseFrame(pc.Payload)
		return false
	}
	if s.state != stateOpen {
		return true // data after our close frame is dropped
	}
	return s.handler.Data(pc) && s.state == stateOpen
}

// pong answers a ping: at once, or once the frame being written to the
// client ends (only the latest ping's pong is owed, RFC 6455 5.5.3). A
// client that pings and does not read its pongs stops being read.
func (s *Session) pong(payload []byte) {
	if s.flags&flagOutMidFrame != 0 {
		s.pongLen = uint8(copy(s.pongPayload[:], payload))
		s.flags |= flagPongOwed
		return
	}
	s.writePong(payload)
}

func (s *Session) writePong(payload []byte) {
	if err := s.shard.writer.Own(s.conn, ws.OpPong, payload, false); err != nil {
		return // gnet closed the connection; onClose has run
	}
	s.countOut(len(payload))
	if s.conn.OutboundBuffered() > s.shard.High() {
		s.shard.Pause(s.conn, s)
	}
}

// onCloseFrame answers (or completes) the close handshake.
func (s *Session) onCloseFrame(payload []byte) {
	code, _, err := codec.ParseClosePayload(payload)
	if err != nil {
		_ = s.failProtocol(err)
		return
	}
	s.closeRecv = code
	if s.state == stateOpen {
		// The client started it: echo its code, then close TCP (the server
		// closes first, RFC 6455 7.1.1).
		s.setReason(ReasonClientClose)
		if s.flags&flagOutMidFrame == 0 {
			s.writeClose(code, "")
		}
	}
	s.state = stateClosed // readFrames returns gnet.Close
}

// failProtocol is a protocol error from the client. The session is no
// longer read; the handler may first let replies to the client's earlier,
// valid messages through (a drain, see Failing), then the close goes out
// and TCP is closed ("fail the WebSocket connection", RFC 6455 7.1.7).
func (s *Session) failProtocol(err error) gnet.Action {
	var perr *codec.ProtocolError
	if !errors.As(err, &perr) {
		perr = &codec.ProtocolError{Code: codec.CloseInternalError, Reason: "internal error"}
	}
	if s.state == stateOpen && s.handler != nil {
		s.failure = *perr
		s.state = stateFailing
		if s.handler.Failing(perr) {
			cfg := &s.shard.srv.cfg
			s.drainEnd = s.shard.now() + int64(cfg.FailDrainMax)
			s.drainActivity = s.shard.now()
			s.shard.Pause(s.conn, failingResumer{})
			s.shard.wheel.Schedule(&s.timer, s.shard.now()+int64(cfg.FailDrainQuiet))
			return gnet.None
		}
	}
	s.fail(perr.Code, perr.Reason, failReason(perr.Code))
	return gnet.Close
}

func failReason(code ws.StatusCode) CloseReason {
	switch code {
	case codec.CloseInvalidPayload:
		return ReasonInvalidPayload
	case codec.CloseMessageTooBig:
		return ReasonMessageTooBig
	}
	return ReasonProtocolError
}

// DrainActivity tells a failing session that the handler relayed a frame
// to the client: the drain goes on until the handler has been quiet for
// the drain's quiet period (or its maximum passes).
func (s *Session) DrainActivity() {
	if s.state == stateFailing {
		s.drainActivity = s.shard.now()
	}
}

// Failing reports whether the session is draining after a protocol error.
func (s *Session) Failing() bool { return s.state == stateFailing }

// finishFailing sends the failure's close frame (or, with a frame toward
// the client half written, cuts TCP) and closes.
func (s *Session) finishFailing() {
	if s.state != stateFailing {
		return
	}
	if s.flags&flagOutMidFrame != 0 {
		s.Abort(failReason(s.failure.Code))
		return
	}
	s.fail(s.failure.Code, s.failure.Reason, failReason(s.failure.Code))
	_ = s.conn.Close()
}

// failingResumer keeps a failing session unread: it never resumes.
type failingResumer struct{}

func (failingResumer) MayResume() bool { return false }
func (failingResumer) Resumed()        {}
func (failingResumer) Stalled()        {}

// fail writes a close frame and marks the session closed; the caller
// closes TCP (by returning gnet.Close or calling conn.Close).
func (s *Session) fail(code ws.StatusCode, reason string, why CloseReason) {
	if (s.state == stateOpen || s.state == stateFailing) && s.flags&flagOutMidFrame == 0 {
		s.writeClose(code, reason) // closing: our close frame went out already
	}
	s.state = stateClosed
	s.setReason(why)
	s.logEnd(zap.Uint16("close_code", uint16(code)), zap.String("detail", reason))
}

// MayResume is the session's own flow gate: read again once its queue
// drained below the low watermark and the handler (its destination) has
// room.
func (s *Session) MayResume() bool {
	if s.flags&flagHold != 0 || s.conn.OutboundBuffered() >= s.shard.Low() {
		return false
	}
	g, ok := s.handler.(FlowGate)
	return !ok || g.MayRead()
}

// Resumed reads what stayed buffered while the session was paused.
func (s *Session) Resumed() { s.readBuffered() }

// Stalled: the session waited the stall timeout. If its own queue is
// still full the client stopped reading (1008); otherwise the handler's
// destination did not drain (the handler decides).
func (s *Session) Stalled() {
	if s.conn.OutboundBuffered() >= s.shard.Low() {
		s.startClose(ClosePolicySlowConsumer, "slow consumer: not reading", ReasonSlowConsumer)
		return
	}
	if g, ok := s.handler.(FlowGate); ok {
		g.Stalled()
	}
}

// Pause stops reading the client until the session's flow gate lets (its
// own queue and the handler's FlowGate).
func (s *Session) Pause() { s.shard.Pause(s.conn, s) }

// armIdle schedules the next idle check from the last inbound traffic.
func (s *Session) armIdle() {
	s.shard.wheel.Schedule(&s.timer, s.lastRead+int64(s.shard.srv.cfg.PingInterval))
}

// OnTimer is the session's one deadline passing. What it means depends on
// the state: handshake timeout, hold end, idle check or ping timeout,
// drain end, close timeout.
func (s *Session) OnTimer(now int64) {
	s.shard.queue.Enter()
	defer s.shard.queue.Leave()
	cfg := &s.shard.srv.cfg
	switch s.state {
	case stateHandshaking:
		if e := s.decidedRefusal(); e != nil {
			_ = s.refuse(e) // its request did not come within refuseLinger
		} else {
			s.setReason(ReasonHandshakeTimeout)
			_ = s.refuse(&codec.HandshakeError{Status: 408, Reason: "handshake timeout"})
		}
		_ = s.conn.Close()
	case stateOpen:
		s.onOpenTimer(now, cfg)
	case stateFailing:
		if now >= s.drainEnd || now-s.drainActivity >= int64(cfg.FailDrainQuiet) {
			s.finishFailing()
			return
		}
		s.shard.wheel.Schedule(&s.timer, min(s.drainEnd, s.drainActivity+int64(cfg.FailDrainQuiet)))
	case stateClosing:
		s.shard.srv.stats.CloseTimeouts.Add(1)
		s.state = stateClosed
		s.logEnd()
		_ = s.conn.Close()
	}
}

func (s *Session) onOpenTimer(now int64, cfg *Config) {
	if s.flags&flagHold != 0 {
		if now >= s.holdEnd {
			if h, ok := s.handler.(HoldExpirer); ok {
				h.HoldExpired() // stops waiting now, not when the close completes
			}
			s.startClose(codec.CloseTryAgainLater, "no backend connection available", ReasonAcquireTimeout)
		} else {
			s.shard.wheel.Schedule(&s.timer, s.holdEnd)
		}
		return
	}
	if s.shard.Paused(s.conn) {
		// We are not reading it: silence proves nothing. The stall timeout
		// watches a paused session.
		s.lastRead = now
		s.armIdle()
		return
	}
	if s.flags&flagPingOutstanding != 0 {
		if now-s.pingAt >= int64(cfg.PongTimeout) {
			s.fail(codec.CloseGoingAway, "ping timeout", ReasonPingTimeout)
			_ = s.conn.Close()
			return
		}
		s.shard.wheel.Schedule(&s.timer, s.pingAt+int64(cfg.PongTimeout))
		return
	}
	if now-s.lastRead < int64(cfg.PingInterval) || s.flags&flagOutMidFrame != 0 {
		s.armIdle()
		return
	}
	if err := s.shard.writer.Own(s.conn, ws.OpPing, nil, false); err != nil {
		return
	}
	s.countOut(0)
	s.flags |= flagPingOutstanding
	s.pingAt = now
	s.shard.wheel.Schedule(&s.timer, now+int64(cfg.PongTimeout))
}

// onClose is gnet telling us the TCP connection is gone. It runs exactly
// once per session and does all the bookkeeping.
func (s *Session) onClose(err error) {
	sh, srv := s.shard, s.shard.srv
	if t, ok := s.conn.(*looptls.Conn); ok {
		t.Gone()
	}
	sh.wheel.Stop(&s.timer)
	sh.Forget(s.conn)
	delete(sh.sessions, s)
	if s.flags&flagAdmitted != 0 {
		srv.perIP.Release(s.client.Addr())
	}
	if s.state == stateHandshaking {
		s.setReason(ReasonHandshakeRefused)
	}
	s.setReason(ReasonConnectionLost)
	s.state = stateClosed
	srv.stats.Open.Add(-1)
	sh.clients.Add(-1)
	if s.flags&flagUpgraded != 0 {
		srv.stats.Sessions.Add(-1)
		sh.Sessions.Add(-1)
	}
	if s.handler != nil {
		s.handler.Closed(s.reason)
	}
	if fn := srv.cfg.OnSessionEnd; fn != nil && s.flags&flagUpgraded != 0 {
		fn(s.record())
	}
}

// countOut counts one frame written to the client, with payload bytes.
func (s *Session) countOut(payload int) {
	add(&s.shard.traffic.framesOut, 1)
	s.framesOut++
	s.addBytesOut(payload)
}

func (s *Session) addBytesOut(n int) {
	add(&s.shard.traffic.bytesOut, int64(n))
	s.bytesOut += int64(n)
}

// setReason records why the session ends and counts it. The first reason
// wins: a close timeout after a shutdown close is still a shutdown.
func (s *Session) setReason(r CloseReason) {
	if s.reason != ReasonNone {
		return
	}
	s.reason = r
	s.shard.srv.stats.closed[r].Add(1)
}

// logEnd logs why a session is ending, at most once a second per reason.
func (s *Session) logEnd(fields ...zap.Field) {
	srv := s.shard.srv
	ok, dropped := srv.logLimits[s.reason].Allow(srv.now())
	if !ok {
		return
	}
	if ce := srv.log.Check(zap.InfoLevel, "session ended"); ce != nil {
		fields = append(fields,
			zap.String("session", SessionID(s.id)), // as in session_start and the access log
			zap.Stringer("reason", s.reason),
			zap.String("client", addrString(s.RemoteAddr())),
			zap.Int64("suppressed", dropped))
		ce.Write(fields...)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
