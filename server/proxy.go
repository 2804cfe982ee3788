package server

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/pool"
)

// DefaultAcquireTimeout is how long a new session waits for an idle
// backend connection before close 1013.
const DefaultAcquireTimeout = 3 * time.Second

// Proxy is the gateway's Handler: each session leases a backend connection
// from its shard's pool (same event loop) and frames are relayed both ways
// on the loop. The server answers pings and runs the close handshake with
// the client; the pool does the same with the backend.
type Proxy struct {
	// AcquireTimeout bounds the wait for an idle connection (default 3 s).
	AcquireTimeout time.Duration
}

// sessionIDPrefix makes session ids unique across processes and restarts.
var sessionIDPrefix = fmt.Sprintf("%08x", rand.Uint32())

// relay is one session's side of the proxy. Loop-only.
type relay struct {
	s           *Session
	group       string                // the backend group its route chose
	conn        *pool.Conn            // the leased backend connection, nil before and after
	waiting     bool                  // queued in the shard for a connection
	midMessage  bool                  // the last data frame relayed to the backend was not final
	backendURL  string                // the backend of the leased connection, for the access log
	backendGone ws.StatusCode         // code the backend side failed with, 0 if it did not
	req         *codec.UpgradeRequest // kept until the session-start message went out
}

// Upgrade routes the session to a backend group by its path, and refuses
// it before the upgrade when no route matches (404) or no backend of the
// group can serve it (503).
func (p *Proxy) Upgrade(s *Session, req *codec.UpgradeRequest) error {
	ps := s.shard.pool
	group, ok := s.shard.srv.cfg.Pool.Routing().Lookup(req.URI)
	if !ok {
		return &codec.HandshakeError{Status: 404, Reason: "no route for this path"}
	}
	if !ps.Available(group) {
		return &codec.HandshakeError{Status: 503, Reason: "no backend available", Header: "Retry-After: 1\r\n"}
	}
	r := &relay{s: s, group: group}
	if anySessionStart(s.shard.srv.cfg.Pool) {
		r.req = req
	}
	s.Data = r
	return nil
}

func anySessionStart(p *pool.Pool) bool {
	for _, b := range p.Backends() {
		if b.Settings().SessionStart && !b.Removed() {
			return true
		}
	}
	return false
}

// Opened leases a connection, or queues the session and holds its frames.
func (p *Proxy) Opened(s *Session) {
	r := s.Data.(*relay)
	if c := s.shard.pool.Acquire(r, r.group); c != nil {
		r.bind(c)
		return
	}
	r.waiting = true
	timeout := p.AcquireTimeout
	if timeout <= 0 {
		timeout = DefaultAcquireTimeout
	}
	s.hold(timeout)
}

// HoldExpired stops waiting as soon as the acquire timeout fires, so
// reconcile no longer dials for a session that is closing.
func (p *Proxy) HoldExpired(s *Session) {
	if r, ok := s.Data.(*relay); ok && r.waiting {
		r.waiting = false
		s.shard.pool.StopWaiting(r.group)
	}
}

// StillWaiting tells the pool whether this session still wants a connection.
func (r *relay) StillWaiting() bool { return r.waiting }

// Granted is the pool handing a waiting session its connection.
func (r *relay) Granted(c *pool.Conn) bool {
	if !r.waiting || r.s.state != stateOpen {
		return false
	}
	r.waiting = false
	r.s.shard.pool.StopWaiting(r.group)
	r.bind(c)
	r.s.resume()
	return true
}

func (r *relay) bind(c *pool.Conn) {
	r.conn = c
	r.backendURL = c.Backend().Settings().URL
	c.Bind(r)
	if req := r.req; req != nil {
		r.req = nil
		if st := c.Backend().Settings(); st.SessionStart {
			msg := sessionStartMessage(r.s, req, st.SessionHeaders)
			if err := c.SendText(msg); err != nil {
				return // the backend write failed: BackendGone has run
			}
		}
	}
}

// sessionStart is the first message a backend sees of a session when
// Settings.SessionStart is on: what it would have seen in a handshake.
type sessionStart struct {
	Type      string            `json:"type"` // "session_start"
	SessionID string            `json:"session_id"`
	Path      string            `json:"path"`
	Query     string            `json:"query,omitempty"`
	Client    string            `json:"client"` // client address, ip:port
	Headers   map[string]string `json:"headers,omitempty"`
}

func sessionStartMessage(s *Session, req *codec.UpgradeRequest, headers []string) []byte {
	path, query, _ := strings.Cut(req.URI, "?")
	m := sessionStart{
		Type:      "session_start",
		SessionID: fmt.Sprintf("%s-%x", sessionIDPrefix, s.id),
		Path:      path,
		Query:     query,
		Client:    addrString(s.RemoteAddr()),
	}
	for _, name := range headers {
		if v := req.Get(name); v != "" {
			if m.Headers == nil {
				m.Headers = make(map[string]string, len(headers))
			}
			m.Headers[name] = v
		}
	}
	b, _ := json.Marshal(m) // strings and a map of strings cannot fail
	return b
}

// Frame relays a client frame to the backend.
func (p *Proxy) Frame(s *Session, h ws.Header, payload []byte) {
	r := s.Data.(*relay)
	c := r.conn
	if c == nil {
		return // the backend went away; the session is closing
	}
	r.midMessage = !h.Fin
	if err := c.Forward(h, payload); err != nil {
		return // write failed: gnet closed it and BackendGone ran
	}
	if c.OverBudget() {
		// The backend reads slower than the client sends: stop before the
		// queue grows further. A frame may sit half-written: never reuse.
		c.MarkBroken()
		s.startClose(codec.CloseTryAgainLater, "backend is not keeping up", ReasonSlowBackend)
	}
}

// FromBackend relays a backend frame to the client, as received.
func (r *relay) FromBackend(h ws.Header, frame []byte) {
	r.s.writeRaw(frame, int(h.Length))
}

// BackendGone closes the session 1011 (or the backend's own going-away
// code); the connection is not reused.
func (r *relay) BackendGone(code ws.StatusCode, reason string) {
	r.conn = nil
	r.backendGone = code
	r.s.startClose(code, reason, ReasonBackendLost)
}

// Closed releases the connection by its backend's policy. It is reused
// only if no message was left half-relayed in either direction: a message
// the client started but never finished (or whose last frame failed
// validation) leaves the backend mid-message.
func (p *Proxy) Closed(s *Session, _ CloseReason) {
	r, ok := s.Data.(*relay)
	if !ok {
		return // refused before the upgrade
	}
	if r.waiting {
		r.waiting = false
		s.shard.pool.StopWaiting(r.group)
	}
	if c := r.conn; c != nil {
		r.conn = nil
		s.shard.pool.Release(c, !r.midMessage)
	}
	r.req = nil
}
