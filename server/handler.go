package server

import (
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// Handler decides what sessions do: Echo, or the gateway's relay. Loop-only
// and must not block.
type Handler interface {
	// Upgrade sees a valid upgrade request before the 101 goes out. It
	// returns the session's own handler, or an error (a
	// *codec.HandshakeError picks the HTTP status) to refuse the upgrade.
	Upgrade(s *Session, req *codec.UpgradeRequest) (SessionHandler, error)
}

// SessionHandler is what one session does with its messages. Every method
// is Loop-only and must not block.
type SessionHandler interface {
	// Opened runs once the 101 is written, before any frame is read.
	Opened()
	// Data gets each piece of each data frame, in order, as it arrives:
	// the payload is unmasked and valid only during the call; sizes,
	// fragmentation and UTF-8 were checked up to this piece. It returns
	// false to stop reading for now (it paused or holds the session).
	Data(pc codec.Piece) bool
	// Failing says the client broke the protocol: the session is no
	// longer read. Return true to let replies to the client's earlier,
	// valid messages through first: the close goes out once the handler
	// has been quiet (see Session.DrainActivity) for Config.FailDrainQuiet,
	// at most Config.FailDrainMax later. Return false to fail at once.
	Failing(err *codec.ProtocolError) bool
	// Closed runs once, when the connection is gone.
	Closed(reason CloseReason)
}

// FlowGate is a SessionHandler that relays what the client sends to
// somewhere else (a backend): the session is read only while that
// destination has room.
type FlowGate interface {
	// MayRead reports whether the destination's queue is below the low
	// watermark.
	MayRead() bool
	// Stalled runs when the session waited the stall timeout for the
	// destination to drain.
	Stalled()
}

// HoldExpirer is a SessionHandler that learns when the session's hold ran
// out (it is about to be closed 1013), before the close completes.
type HoldExpirer interface {
	HoldExpired()
}

// BackendReporter is a SessionHandler with a backend to name in the
// session's access record.
type BackendReporter interface {
	// Backend is the URL of the backend the session used ("" if none) and
	// the close code the backend side ended with (0 if it did not).
	Backend() (url string, gone ws.StatusCode)
}
