package server

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/jwtauth"
)

// sessionIDPrefix makes session ids unique across processes and restarts.
var sessionIDPrefix = fmt.Sprintf("%08x", rand.Uint32())

// SessionID is how a session is named outside the process: in the access
// log, log lines and the session-start message a backend gets.
func SessionID(id uint64) string { return fmt.Sprintf("%s-%x", sessionIDPrefix, id) }

// SessionRecord is what the access log gets of a session that ended.
type SessionRecord struct {
	ID        uint64
	Client    string        // client address ip:port
	Path      string        // request target (path and query, without access_token)
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
		ID: s.id, Client: addrString(s.RemoteAddr()), Path: logURI(s.uri),
		Duration: time.Duration(sh.srv.now() - s.started),
		FramesIn: s.framesIn, FramesOut: s.framesOut, BytesIn: s.bytesIn, BytesOut: s.bytesOut,
		Reason: s.reason, CloseSent: uint16(s.closeSent), CloseRecv: uint16(s.closeRecv),
	}
	if b, ok := s.handler.(BackendReporter); ok {
		url, gone := b.Backend()
		r.Backend, r.BackendClose = url, uint16(gone)
	}
	return r
}

// logURI is a request target as logs may show it: no access_token.
func logURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	if query = jwtauth.StripToken(query); query == "" {
		return path
	}
	return path + "?" + query
}
