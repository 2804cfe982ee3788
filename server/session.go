package server

import (
	"errors"
	"net"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/wheel"
)

type sessionState uint8

const (
	stateHandshaking sessionState = iota // reading the upgrade request
	stateOpen                            // upgraded; frames flow both ways
	stateClosing                         // we sent a close frame; waiting for the reply
	stateClosed                          // TCP is closing or closed; nothing more happens
)

var stateNames = [...]string{"handshaking", "open", "closing", "closed"}

func (st sessionState) String() string { return stateNames[st] }

type sessionFlags uint8

const (
	flagRefuseBusy      sessionFlags = 1 << iota // over capacity or draining: answer 503
	flagPingOutstanding                          // we pinged and nothing has arrived since
	flagUpgraded                                 // the 101 went out (counted in Stats.Sessions)
	flagHold                                     // frames stay buffered until resume (waiting for a backend)
)

// Session is one client connection, from accept to close. All of it is
// owned by its shard's loop: methods are Loop-only unless they say otherwise.
type Session struct {
	conn     gnet.Conn
	shard    *shard
	id       uint64       // unique per server, for logs
	state    sessionState // see the state constants
	flags    sessionFlags // see the flag constants
	reason   CloseReason  // why it ended (set by whoever ends it)
	timer    wheel.Timer  // the one deadline this session has at a time
	lastRead int64        // shard clock at the last inbound bytes, ns
	pingAt   int64        // shard clock when the outstanding ping went out, ns
	need     int          // inbound bytes needed before parsing is worth trying
	holdEnd  int64        // shard clock: a hold ends with close 1013 at this time

	scanner codec.HeaderScanner // handshake: end of the header block
	msg     codec.MessageState  // fragmentation of inbound data messages
	text    codec.UTF8Validator // UTF-8 state of the inbound text message

	// Per-session traffic, for the access log (Config.OnSessionEnd).
	started   int64         // shard clock at accept
	uri       string        // request target, kept once upgraded
	framesIn  int64         // frames received from the client
	framesOut int64         // frames written to the client
	bytesIn   int64         // payload bytes received
	bytesOut  int64         // payload bytes written
	closeSent ws.StatusCode // close code we sent the client, 0 if none
	closeRecv ws.StatusCode // close code the client sent, 0 if none

	// Data belongs to the Handler (the echo reassembly buffer, say).
	Data any
}

// ID is the session's server-unique id.
func (s *Session) ID() uint64 { return s.id }

// RemoteAddr is the client's address. Loop-only.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// MessageOpCode is the opcode (text or binary) of the current inbound message.
func (s *Session) MessageOpCode() ws.OpCode { return s.msg.OpCode() }

// Open reports whether the session is upgraded and not closing.
func (s *Session) Open() bool { return s.state == stateOpen }

// WriteMessage sends one unfragmented data frame (or a fragment, with fin
// false) to the client. It enforces the write budget: a client that does
// not read closes the session 1008. Loop-only.
func (s *Session) WriteMessage(op ws.OpCode, fin bool, payload []byte) {
	if s.state != stateOpen {
		return
	}
	if err := s.shard.writeFrame(s.conn, op, fin, payload); err != nil {
		return // gnet closed the connection; onClose has run
	}
	s.countOut(len(payload))
	s.checkWriteBudget()
}

// writeRaw writes frame bytes that are already a valid unmasked frame (a
// backend's frame, relayed as received), with the same budget as
// WriteMessage. Loop-only.
func (s *Session) writeRaw(frame []byte, payloadLen int) {
	if s.state != stateOpen {
		return
	}
	if _, err := s.conn.Write(frame); err != nil {
		return // gnet closed the connection; onClose has run
	}
	s.countOut(payloadLen)
	s.checkWriteBudget()
}

// checkWriteBudget closes the session 1008 once the bytes queued toward
// the client pass the write budget. Nothing more is queued after that but
// the close frame, so the queue stays bounded; a client that reads again
// gets what was queued and the close, one that does not is cut at the
// close timeout.
func (s *Session) checkWriteBudget() {
	if s.conn.OutboundBuffered() > s.shard.srv.cfg.WriteBufferLimit {
		s.startClose(ClosePolicySlowConsumer, "slow consumer: write budget exceeded", ReasonSlowConsumer)
	}
}

// Close starts the close handshake with code and reason; the connection
// ends when the client answers or after the close timeout. Loop-only.
func (s *Session) Close(code ws.StatusCode, reason string) {
	s.startClose(code, reason, ReasonServerClose)
}

// Abort ends the connection at once, without a close frame (the peer sees
// the TCP connection end): for a handler that must drop a client. Loop-only.
func (s *Session) Abort() {
	s.setReason(ReasonServerClose)
	s.state = stateClosed
	_ = s.conn.Close()
}

// ClosePolicySlowConsumer is the close code sent to a client whose unread
// bytes passed the write budget: 1008 (policy violation).
const ClosePolicySlowConsumer = codec.ClosePolicyViolation

func (s *Session) startClose(code ws.StatusCode, reason string, why CloseReason) {
	if s.state != stateOpen {
		return
	}
	s.flags &^= flagHold // the client's close reply must be read
	s.state = stateClosing
	s.setReason(why)
	s.writeClose(code, reason)
	if s.state == stateClosing { // a failed write closed it under us
		s.shard.wheel.Schedule(&s.timer, s.shard.now()+int64(s.shard.srv.cfg.CloseTimeout))
	}
}

func (s *Session) writeClose(code ws.StatusCode, reason string) {
	sh := s.shard
	sh.scratch = codec.AppendCloseFrame(sh.scratch[:0], code, reason)
	if _, err := s.conn.Write(sh.scratch); err != nil {
		return // gnet closed the connection; onClose has run
	}
	s.closeSent = code
	s.countOut(len(sh.scratch) - 2) // close payloads are under 126 bytes: 2-byte header
}

// shutdown is the server going away: 1001 to upgraded sessions, the end to
// those still handshaking. Loop-only.
func (s *Session) shutdown() {
	switch s.state {
	case stateHandshaking:
		s.flags |= flagRefuseBusy // answer 503 if the request completes first
		s.setReason(ReasonShutdown)
		_ = s.conn.Close()
	case stateOpen:
		s.startClose(codec.CloseGoingAway, "server shutting down", ReasonShutdown)
	}
}

// onTraffic handles whatever has arrived. Loop-only.
func (s *Session) onTraffic() gnet.Action {
	s.lastRead = s.shard.now()
	switch s.state {
	case stateHandshaking:
		return s.readHandshake()
	case stateOpen, stateClosing:
		return s.readFrames()
	default:
		_, _ = s.conn.Discard(-1)
		return gnet.None
	}
}

// readHandshake parses the upgrade request once its header block is
// complete; frames sent right behind it stay buffered and are read next.
func (s *Session) readHandshake() gnet.Action {
	c, srv := s.conn, s.shard.srv
	buf, _ := c.Peek(-1)
	end, err := s.scanner.Scan(buf, srv.cfg.MaxHeaderBytes)
	if errors.Is(err, codec.ErrNeedMore) {
		return gnet.None
	}
	if err != nil {
		return s.refuse(err)
	}
	if s.flags&flagRefuseBusy != 0 {
		return s.refuse(&codec.HandshakeError{Status: 503, Reason: "server at capacity", Header: "Retry-After: 1\r\n"})
	}
	req, err := codec.ParseUpgrade(buf[:end])
	if err != nil {
		return s.refuse(err)
	}
	if err := srv.cfg.Handler.Upgrade(s, req); err != nil {
		return s.refuse(err)
	}
	sh := s.shard
	sh.scratch = codec.AppendAccept(sh.scratch[:0], req.Key, codec.SelectProtocol(srv.cfg.Subprotocols, req.Protocols))
	if _, err := c.Write(sh.scratch); err != nil {
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
	s.armIdle(sh.now())
	srv.cfg.Handler.Opened(s)
	if s.state == stateClosed {
		return gnet.Close
	}
	if c.InboundBuffered() > 0 {
		return s.readFrames()
	}
	return gnet.None
}

// hold keeps the client's frames buffered (unparsed) until resume, for at
// most timeout; then the session is closed 1013. The bytes held are
// bounded by the write budget. Loop-only.
func (s *Session) hold(timeout time.Duration) {
	s.flags |= flagHold
	s.holdEnd = s.shard.now() + int64(timeout)
	s.shard.wheel.Schedule(&s.timer, s.holdEnd)
}

// resume ends a hold and handles what arrived meanwhile. Loop-only, not
// from this session's own OnTraffic.
func (s *Session) resume() {
	if s.flags&flagHold == 0 {
		return
	}
	s.flags &^= flagHold
	s.armIdle(s.shard.now())
	if s.conn.InboundBuffered() > 0 && s.readFrames() == gnet.Close {
		_ = s.conn.Close()
	}
}

// refuse answers the upgrade with an HTTP error and closes.
func (s *Session) refuse(err error) gnet.Action {
	var herr *codec.HandshakeError
	if !errors.As(err, &herr) {
		herr = &codec.HandshakeError{Status: 500, Reason: "internal error"}
	}
	srv := s.shard.srv
	sh := s.shard
	srv.stats.countRefusal(herr.Status) // before the client can see it
	sh.scratch = codec.AppendHTTPError(sh.scratch[:0], herr)
	_, _ = s.conn.Write(sh.scratch)
	s.setReason(ReasonHandshakeRefused)
	s.state = stateClosed
	s.logEnd(zap.Int("status", herr.Status), zap.String("detail", herr.Reason))
	return gnet.Close
}

// readFrames handles every complete frame in the inbound buffer, then
// discards what it used. A partial frame stays buffered: its size is
// bounded by the frame limit, checked from the header before waiting.
func (s *Session) readFrames() gnet.Action {
	c := s.conn
	if s.flags&flagHold != 0 {
		if c.InboundBuffered() > s.shard.srv.cfg.WriteBufferLimit {
			return s.failProtocol(&codec.ProtocolError{Code: codec.ClosePolicyViolation, Reason: "too much sent while waiting for a backend"})
		}
		return gnet.None
	}
	if s.need > 0 && c.InboundBuffered() < s.need {
		return gnet.None
	}
	cfg := &s.shard.srv.cfg
	buf, _ := c.Peek(-1)
	off := 0
	s.need = 0
	for off < len(buf) {
		h, hn, total, err := codec.SplitFrame(buf[off:], codec.RoleServer, cfg.MaxFrameBytes)
		if errors.Is(err, codec.ErrNeedMore) {
			s.need = total
			break
		}
		if err != nil {
			return s.failProtocol(err)
		}
		payload := buf[off+hn : off+total]
		codec.Mask(payload, h.Mask, 0)
		off += total
		if act := s.onFrame(h, payload); act != gnet.None || s.state == stateClosed {
			return act
		}
	}
	if off > 0 { // Discard(0) would drop everything (gnet: n <= 0 means all)
		_, _ = c.Discard(off)
	}
	return gnet.None
}

// onFrame handles one complete, unmasked frame.
func (s *Session) onFrame(h ws.Header, payload []byte) gnet.Action {
	srv := s.shard.srv
	srv.stats.FramesIn.Add(1)
	srv.stats.BytesIn.Add(int64(len(payload)))
	s.framesIn++
	s.bytesIn += int64(len(payload))
	s.flags &^= flagPingOutstanding // anything at all proves the peer is alive
	switch h.OpCode {
	case ws.OpPing:
		if s.state == stateOpen {
			if err := s.shard.writeFrame(s.conn, ws.OpPong, true, payload); err != nil {
				return gnet.None // gnet closed the connection; onClose has run
			}
			s.countOut(len(payload))
			// A client that pings and never reads fills its queue with
			// pongs like any other frame: the same budget applies.
			s.checkWriteBudget()
		}
		return gnet.None
	case ws.OpPong:
		return gnet.None // unsolicited pongs are fine (RFC 6455 5.5.3)
	case ws.OpClose:
		return s.onCloseFrame(payload)
	}
	if s.state != stateOpen {
		return gnet.None // data after our close frame is dropped
	}
	if err := s.msg.Next(h, srv.cfg.MaxMessageBytes); err != nil {
		return s.failProtocol(err)
	}
	if s.msg.OpCode() == ws.OpText {
		if h.OpCode == ws.OpText {
			s.text.Reset()
		}
		if !s.text.Write(payload) || (h.Fin && !s.text.Complete()) {
			return s.failProtocol(&codec.ProtocolError{Code: codec.CloseInvalidPayload, Reason: "invalid UTF-8 in text message"})
		}
	}
	srv.cfg.Handler.Frame(s, h, payload)
	if s.state == stateClosed {
		return gnet.Close
	}
	return gnet.None
}

// onCloseFrame answers (or completes) the close handshake.
func (s *Session) onCloseFrame(payload []byte) gnet.Action {
	code, _, err := codec.ParseClosePayload(payload)
	if err != nil {
		return s.failProtocol(err)
	}
	s.closeRecv = code
	if s.state == stateOpen {
		// The client started it: echo its code, then close TCP (the server
		// closes first, RFC 6455 7.1.1).
		s.setReason(ReasonClientClose)
		s.writeClose(code, "")
	}
	s.state = stateClosed
	return gnet.Close
}

// failProtocol sends the close code of a protocol error and closes TCP at
// once ("fail the WebSocket connection", RFC 6455 7.1.7).
func (s *Session) failProtocol(err error) gnet.Action {
	var perr *codec.ProtocolError
	if !errors.As(err, &perr) {
		perr = &codec.ProtocolError{Code: codec.CloseInternalError, Reason: "internal error"}
	}
	reason := ReasonProtocolError
	switch perr.Code {
	case codec.CloseInvalidPayload:
		reason = ReasonInvalidPayload
	case codec.CloseMessageTooBig:
		reason = ReasonMessageTooBig
	}
	s.fail(perr.Code, perr.Reason, reason)
	return gnet.Close
}

// fail writes a close frame and marks the session closed; the caller
// closes TCP (by returning gnet.Close or calling conn.Close).
func (s *Session) fail(code ws.StatusCode, reason string, why CloseReason) {
	if s.state == stateOpen { // closing: our close frame went out already
		s.writeClose(code, reason)
	}
	s.state = stateClosed
	s.setReason(why)
	s.logEnd(zap.Uint16("close_code", uint16(code)), zap.String("detail", reason))
}

// armIdle schedules the next idle check from the last inbound traffic.
func (s *Session) armIdle(now int64) {
	s.shard.wheel.Schedule(&s.timer, s.lastRead+int64(s.shard.srv.cfg.PingInterval))
}

// OnTimer is the session's one deadline passing. What it means depends on
// the state: handshake timeout, idle check or ping timeout, close timeout.
func (s *Session) OnTimer(now int64) {
	cfg := &s.shard.srv.cfg
	switch s.state {
	case stateHandshaking:
		s.setReason(ReasonHandshakeTimeout)
		_ = s.refuse(&codec.HandshakeError{Status: 408, Reason: "handshake timeout"})
		_ = s.conn.Close()
	case stateOpen:
		if s.flags&flagHold != 0 {
			if now >= s.holdEnd {
				if h, ok := cfg.Handler.(HoldExpirer); ok {
					h.HoldExpired(s) // stops waiting now, not when the close completes
				}
				s.startClose(codec.CloseTryAgainLater, "no backend connection available", ReasonAcquireTimeout)
			} else {
				s.shard.wheel.Schedule(&s.timer, s.holdEnd)
			}
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
		if now-s.lastRead < int64(cfg.PingInterval) {
			s.armIdle(now)
			return
		}
		if err := s.shard.writeFrame(s.conn, ws.OpPing, true, nil); err != nil {
			return
		}
		s.countOut(0)
		s.flags |= flagPingOutstanding
		s.pingAt = now
		s.shard.wheel.Schedule(&s.timer, now+int64(cfg.PongTimeout))
	case stateClosing:
		s.shard.srv.stats.CloseTimeouts.Add(1)
		s.state = stateClosed
		s.logEnd()
		_ = s.conn.Close()
	}
}

// onClose is gnet telling us the TCP connection is gone. It runs exactly
// once per session and does all the bookkeeping.
func (s *Session) onClose(err error) {
	sh, srv := s.shard, s.shard.srv
	sh.wheel.Stop(&s.timer)
	delete(sh.sessions, s)
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
	srv.cfg.Handler.Closed(s, s.reason)
	if fn := srv.cfg.OnSessionEnd; fn != nil && s.flags&flagUpgraded != 0 {
		fn(s.record())
	}
}

// countOut counts one frame written to the client.
func (s *Session) countOut(payload int) {
	st := &s.shard.srv.stats
	st.FramesOut.Add(1)
	st.BytesOut.Add(int64(payload))
	s.framesOut++
	s.bytesOut += int64(payload)
}

// SessionRecord is what the access log gets of a session that ended.
type SessionRecord struct {
	ID        uint64
	Client    string        // client address ip:port
	Path      string        // request target (path and query)
	Backend   string        // backend URL, "" if none was leased
	Duration  time.Duration // from accept to close
	FramesIn  int64         // frames from the client
	FramesOut int64         // frames to the client
	BytesIn   int64         // payload bytes from the client
	BytesOut  int64         // payload bytes to the client
	Reason    CloseReason
	// CloseSent and CloseRecv are the close codes sent to and received
	// from the client (0: none); BackendClose the code the backend side
	// ended with when the backend connection failed (0: it did not).
	CloseSent, CloseRecv, BackendClose uint16
}

func (s *Session) record() *SessionRecord {
	sh := s.shard
	r := &SessionRecord{
		ID: s.id, Client: addrString(s.conn.RemoteAddr()), Path: s.uri,
		Duration: time.Duration(sh.srv.now() - s.started),
		FramesIn: s.framesIn, FramesOut: s.framesOut, BytesIn: s.bytesIn, BytesOut: s.bytesOut,
		Reason: s.reason, CloseSent: uint16(s.closeSent), CloseRecv: uint16(s.closeRecv),
	}
	if rl, ok := s.Data.(*relay); ok {
		r.Backend, r.BackendClose = rl.backendURL, uint16(rl.backendGone)
	}
	return r
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
	ok, dropped := srv.logLimits[s.reason].allow(srv.now())
	if !ok {
		return
	}
	if ce := srv.log.Check(zap.InfoLevel, "session ended"); ce != nil {
		fields = append(fields,
			zap.Uint64("session", s.id),
			zap.Stringer("reason", s.reason),
			zap.String("client", addrString(s.conn.RemoteAddr())),
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
