package codec

import (
	"errors"
	"fmt"

	"github.com/gobwas/ws"
)

// ErrNeedMore reports that a parser was given an incomplete input: nothing
// was consumed; call again once more bytes have arrived.
var ErrNeedMore = errors.New("codec: need more bytes")

// ProtocolError is a WebSocket protocol violation after the upgrade. Code is
// the close code the endpoint must send (1002, 1007, 1009, ...).
type ProtocolError struct {
	Code   ws.StatusCode
	Reason string // short, ASCII, fits a close frame
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("codec: close %d: %s", e.Code, e.Reason)
}

// HandshakeError is a refused upgrade request. Status is the HTTP status to
// answer with; Header holds extra response header lines ("Name: value\r\n").
type HandshakeError struct {
	Status int
	Reason string
	Header string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("codec: HTTP %d: %s", e.Status, e.Reason)
}

func protocolErr(code ws.StatusCode, reason string) error {
	return &ProtocolError{Code: code, Reason: reason}
}

func handshakeErr(status int, reason string) error {
	return &HandshakeError{Status: status, Reason: reason}
}

// Close codes used by this package and its callers, named for readability.
const (
	CloseNormal          = ws.StatusNormalClosure           // 1000
	CloseGoingAway       = ws.StatusGoingAway               // 1001
	CloseProtocolError   = ws.StatusProtocolError           // 1002
	CloseInvalidPayload  = ws.StatusInvalidFramePayloadData // 1007
	ClosePolicyViolation = ws.StatusPolicyViolation         // 1008
	CloseMessageTooBig   = ws.StatusMessageTooBig           // 1009
	CloseInternalError   = ws.StatusInternalServerError     // 1011
	CloseTryAgainLater   = ws.StatusCode(1013)
	CloseNoStatus        = ws.StatusNoStatusRcvd // 1005, never sent on the wire
)
