package relay

import (
	"encoding/json"
	"strings"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/jwtauth"
	"github.com/wsgate/wsgate/server"
)

// sessionStart is the first message a backend sees of a session when
// Settings.SessionStart is on: what it would have seen in a handshake.
type sessionStart struct {
	Type      string            `json:"type"` // "session_start"
	SessionID string            `json:"session_id"`
	Path      string            `json:"path"`
	Query     string            `json:"query,omitempty"` // without access_token
	Client    string            `json:"client"`          // client address, ip:port
	Headers   map[string]string `json:"headers,omitempty"`
	Subject   string            `json:"sub,omitempty"`    // the verified token's subject
	Claims    json.RawMessage   `json:"claims,omitempty"` // the verified token's claims named by -jwt-forward-claim
}

// startInfo is what a session's start message is made of, kept from its
// upgrade until its connection is leased.
type startInfo struct {
	req     *codec.UpgradeRequest
	subject string
	claims  json.RawMessage
	// tokenChecked: the gateway verified the session's token; the
	// Authorization header that carried it is not passed on, even if
	// session_headers names it (the token is the gateway's to check).
	tokenChecked bool
}

func sessionStartMessage(s *server.Session, start *startInfo, headers []string) []byte {
	req := start.req
	path, query, _ := strings.Cut(req.URI, "?")
	m := sessionStart{
		Type:      "session_start",
		SessionID: server.SessionID(s.ID()),
		Path:      path,
		Query:     jwtauth.StripToken(query),
		Client:    s.RemoteAddr().String(),
		Subject:   start.subject,
		Claims:    start.claims,
	}
	for _, name := range headers {
		if start.tokenChecked && strings.EqualFold(name, "Authorization") {
			continue
		}
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
