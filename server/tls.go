package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/looptls"
	"github.com/wsgate/wsgate/internal/proxyproto"
)

// TLS: a connection accepted on the TLS listener is handshaken off the
// loop, on a goroutine of its own among at most Config.TLSHandshakes at a
// time (crypto/tls cannot resume a handshake that ran out of bytes), with
// the handshake timeout; only then is it handed to a loop, where its
// records are read and written (package looptls) and the session sees
// plaintext. A handshake that fails is counted by reason, logged at most
// once a second, and closed.

// TLSFailure is why a TLS handshake failed: a metric label.
type TLSFailure uint8

const (
	TLSTimeout    TLSFailure = iota // not done within the handshake timeout
	TLSClosed                       // the client went away (EOF, reset)
	TLSNotTLS                       // the first bytes were not a TLS handshake
	TLSClientCert                   // no client certificate, or one the CA did not sign
	TLSVersion                      // no protocol version or cipher suite in common
	TLSOther                        // any other alert or error
	numTLSFailures
)

var tlsFailureNames = [numTLSFailures]string{"timeout", "closed", "not_tls", "client_cert", "version", "other"}

func (f TLSFailure) String() string { return tlsFailureNames[f] }

// TLSFailureNames lists the failure labels, by value.
func TLSFailureNames() []string { return tlsFailureNames[:] }

// TLSFailures returns how many handshakes failed for f. Safe for
// concurrent use.
func (s *Stats) TLSFailures(f TLSFailure) int64 { return s.tlsFailed[f].Load() }

// handshakeTLS runs the handshake of c, accepted on the TLS listener, and
// hands it to a loop. It is the goroutine of one handshake.
func (s *Server) handshakeTLS(c *net.TCPConn) {
	defer s.handshakes.Done()
	defer func() { <-s.tlsSlots }()
	ac := &acceptedConn{}
	defer func() {
		if r := recover(); r != nil {
			s.limitedLog(zap.ErrorLevel, &s.panicLog, "TLS handshake panicked", zap.Any("panic", r))
			_ = c.Close()
			s.stats.Open.Add(-1)
			s.releasePerIP(ac)
		}
	}()
	_ = c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	// Stop and Shutdown do not wait the handshake timeout for a client
	// that says nothing: closing the listeners cuts its reads.
	defer context.AfterFunc(s.listening, func() { _ = c.SetDeadline(time.Unix(1, 0)) })()
	if !s.clientBeforeHandshake(c, ac) {
		_ = c.Close()
		s.stats.Open.Add(-1)
		return
	}
	shim := looptls.NewShim(c)
	tc := tls.Server(shim, s.cfg.TLS)
	if err := tc.Handshake(); err != nil {
		s.releasePerIP(ac)
		answerPlainHTTP(c, err)
		_ = c.Close()
		s.stats.Open.Add(-1)
		s.tlsFailed(classifyTLS(err), err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	s.stats.TLSHandshakes.Add(1)
	if s.shuttingDown.Load() {
		s.releasePerIP(ac)
		_ = c.Close()
		s.stats.Open.Add(-1)
		return
	}
	ac.tls = &looptls.Handshaken{TLS: tc, Shim: shim}
	s.handOff(c, ac)
}

// clientBeforeHandshake settles who a TLS connection's client is (its
// PROXY header, with the protocol on) and counts it against the per-IP
// limits, before any handshake work; false: refused (counted and logged),
// close it. Its goroutine is the handshake's.
func (s *Server) clientBeforeHandshake(c *net.TCPConn, ac *acceptedConn) bool {
	ac.client, _ = addrPort(c.RemoteAddr())
	if s.cfg.ProxyProtocol {
		if !s.trustedPeer(c.RemoteAddr()) {
			s.proxyFailed(ProxyUntrusted, c.RemoteAddr(), nil)
			return false
		}
		h, err := proxyproto.Read(c)
		if err != nil {
			f := ProxyMalformed
			if errors.Is(err, proxyproto.ErrNotProxy) {
				f = ProxyMissing
			}
			s.proxyFailed(f, c.RemoteAddr(), err)
			return false
		}
		if h.Local() {
			return true // the proxy's own connection: no client to count (see readProxyHeader)
		}
		ac.client = h.Source
	}
	retry, admitted := s.admit(ac.client.Addr())
	ac.admitted = admitted
	return retry == 0
}

func (s *Server) tlsFailed(f TLSFailure, err error) {
	s.stats.tlsFailed[f].Add(1)
	s.limitedInfo(&s.tlsLog, "TLS handshake failed", zap.Stringer("reason", f), zap.Error(err))
}

// plainHTTPAnswer is what a client that sent plain HTTP to the TLS
// listener reads, rather than a connection closed without a word.
var plainHTTPAnswer = []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n" +
	"Content-Length: 48\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")

// answerPlainHTTP answers 400 on c if err says its first record was an
// HTTP request, never waiting for room to write.
func answerPlainHTTP(c *net.TCPConn, err error) {
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) {
		return
	}
	switch string(rh.RecordHeader[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		writeWithoutWaiting(c, plainHTTPAnswer)
	}
}

// classifyTLS names a handshake error.
func classifyTLS(err error) TLSFailure {
	var ne net.Error
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	msg := err.Error()
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return TLSTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return TLSClosed
	case errors.As(err, &rh):
		return TLSNotTLS
	case strings.Contains(msg, "client certificate") || strings.Contains(msg, "provide a certificate") ||
		strings.Contains(msg, "certificate signed by unknown authority") ||
		strings.Contains(msg, "x509:"):
		return TLSClientCert
	case strings.Contains(msg, "protocol version") || strings.Contains(msg, "no cipher suite") ||
		strings.Contains(msg, "unsupported versions") || strings.Contains(msg, "no mutually supported"):
		return TLSVersion
	case errors.As(err, &ae):
		return TLSOther
	}
	return TLSOther
}

// TLSHandshakesRunning is how many TLS handshakes run now. Safe for
// concurrent use.
func (s *Server) TLSHandshakesRunning() int64 { return int64(len(s.tlsSlots)) }

// tlsReadEnded counts and logs why a session's TLS read side ended.
func (s *Server) tlsReadEnded(err error) {
	if errors.Is(err, io.EOF) {
		return // close_notify: a clean end
	}
	s.stats.TLSReadErrors.Add(1)
	s.limitedInfo(&s.tlsLog, "TLS connection failed", zap.Error(err))
}
