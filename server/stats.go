package server

import (
	"sync/atomic"
)

// CloseReason records why a session ended: a log field and a metric label.
type CloseReason uint8

const (
	ReasonNone             CloseReason = iota
	ReasonClientClose                  // the client sent a close frame
	ReasonServerClose                  // we closed it on the handler's request
	ReasonConnectionLost               // TCP ended without a close handshake
	ReasonHandshakeRefused             // an HTTP error answered the upgrade
	ReasonHandshakeTimeout             // the request did not arrive in time
	ReasonProtocolError                // 1002
	ReasonInvalidPayload               // 1007
	ReasonMessageTooBig                // 1009
	ReasonPingTimeout                  // no pong after an idle ping
	ReasonSlowConsumer                 // the client did not read for the stall timeout (1008)
	ReasonShutdown                     // the server is stopping (1001)
	ReasonBackendLost                  // the backend connection failed under the session (1011)
	ReasonAcquireTimeout               // no backend connection within the acquire timeout (1013)
	ReasonSlowBackend                  // the backend did not read for the stall timeout (1013)
	ReasonOverCapacity                 // refused at accept: past MaxConns or draining (503, no loop saw it)
	ReasonInternalError                // a bug: a callback panicked and the connection was cut
	ReasonBackendClose                 // the backend closed the session (its code and reason passed on)
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{
	"none", "client_close", "server_close", "connection_lost", "handshake_refused",
	"handshake_timeout", "protocol_error", "invalid_payload", "message_too_big",
	"ping_timeout", "slow_consumer", "shutdown",
	"backend_lost", "acquire_timeout", "slow_backend", "over_capacity", "internal_error",
	"backend_close",
}

func (r CloseReason) String() string {
	if r < numCloseReasons {
		return closeReasonNames[r]
	}
	return "unknown"
}

// refusal statuses counted one by one; anything else lands in "other".
var refusalStatuses = [...]int{400, 401, 403, 404, 405, 408, 426, 429, 431, 500, 502, 503}

// Stats are the server's counters. Written by the loops with atomic adds,
// read by anyone. Safe for concurrent use.
type Stats struct {
	Accepted atomic.Int64 // TCP connections accepted
	Open     atomic.Int64 // TCP connections currently open (handshaking or upgraded)
	Upgraded atomic.Int64 // sessions that completed the handshake
	Sessions atomic.Int64 // upgraded sessions currently open
	// Frames and payload bytes from and to clients are counted per shard
	// (each loop writes its own cache line; see traffic) and summed here:
	// FramesIn, FramesOut, BytesIn, BytesOut.
	shards atomic.Pointer[[]*Shard]
	// CloseTimeouts counts sessions cut because the client never answered
	// our close frame (their reason stays what started the close).
	CloseTimeouts atomic.Int64
	// AcceptEMFILE counts accepts that found the process out of
	// descriptors (a waiting connection was refused to make room).
	AcceptEMFILE atomic.Int64
	// EnrollFailures counts accepted connections no event loop took.
	EnrollFailures atomic.Int64
	// Panics counts event-loop callbacks that panicked (each a bug; the
	// connection involved was closed and the loop went on).
	Panics atomic.Int64
	// Pauses counts connections (client and backend) paused for
	// backpressure; PausedNanos the time they spent paused, counted when
	// they resume or close; Stalls those that waited the stall timeout.
	Pauses, PausedNanos, Stalls atomic.Int64
	// TLSHandshakes counts TLS handshakes that completed; TLSReadErrors
	// TLS sessions whose records failed (a bad record, an alert) rather
	// than ending with close_notify or the TCP end. Failed handshakes are
	// counted by reason (TLSFailures). TLSHandshakeWaits counts the times
	// the TLS acceptor waited for a handshake to end before accepting
	// again (Config.TLSHandshakes were running).
	TLSHandshakes, TLSReadErrors, TLSHandshakeWaits atomic.Int64
	tlsFailed                                       [numTLSFailures]atomic.Int64
	proxyFailed                                     [numProxyFailures]atomic.Int64
	refused                                         [len(refusalStatuses) + 1]atomic.Int64
	closed                                          [numCloseReasons]atomic.Int64
}

func (s *Stats) countRefusal(status int) {
	for i, st := range refusalStatuses {
		if st == status {
			s.refused[i].Add(1)
			return
		}
	}
	s.refused[len(refusalStatuses)].Add(1)
}

// RefusalStatuses lists the HTTP statuses Refused counts one by one (any
// other status is counted under 0).
func RefusalStatuses() []int { return refusalStatuses[:] }

// Refused returns how many handshakes were answered with HTTP status
// (any status not in the counted list is reported under 0).
func (s *Stats) Refused(status int) int64 {
	for i, st := range refusalStatuses {
		if st == status {
			return s.refused[i].Load()
		}
	}
	if status == 0 {
		return s.refused[len(refusalStatuses)].Load()
	}
	return 0
}

// Closed returns how many connections ended (or started ending) for
// reason; each connection is counted once, under its first reason.
func (s *Stats) Closed(reason CloseReason) int64 {
	if reason >= numCloseReasons {
		return 0
	}
	return s.closed[reason].Load()
}

// traffic is a shard's frame and byte counts toward and from its clients:
// written by its loop alone on every frame, so it sits on cache lines of
// its own (a counter all loops add to would move between cores on every
// frame); read by anyone through Stats.
type traffic struct {
	_                   [64]byte
	framesIn, framesOut atomic.Int64
	bytesIn, bytesOut   atomic.Int64
	_                   [64]byte
}

// add counts on the loop: one writer, so a load and a store, never a
// locked read-modify-write.
func add(c *atomic.Int64, n int64) { c.Store(c.Load() + n) }

func (s *Stats) sum(field func(*traffic) *atomic.Int64) int64 {
	p := s.shards.Load()
	if p == nil {
		return 0
	}
	var n int64
	for _, sh := range *p {
		n += field(&sh.traffic).Load()
	}
	return n
}

// FramesIn is the data and control frames received from clients. Safe
// for concurrent use.
func (s *Stats) FramesIn() int64 { return s.sum(func(t *traffic) *atomic.Int64 { return &t.framesIn }) }

// FramesOut is the frames written to clients.
func (s *Stats) FramesOut() int64 {
	return s.sum(func(t *traffic) *atomic.Int64 { return &t.framesOut })
}

// BytesIn is the payload bytes received from clients (every frame).
func (s *Stats) BytesIn() int64 { return s.sum(func(t *traffic) *atomic.Int64 { return &t.bytesIn }) }

// BytesOut is the payload bytes written to clients (every frame).
func (s *Stats) BytesOut() int64 { return s.sum(func(t *traffic) *atomic.Int64 { return &t.bytesOut }) }
