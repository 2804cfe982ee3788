package server

import "time"

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
	if b, ok := s.handler.(BackendReporter); ok {
		url, gone := b.Backend()
		r.Backend, r.BackendClose = url, uint16(gone)
	}
	return r
}
