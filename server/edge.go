package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/iplimit"
	"github.com/wsgate/wsgate/internal/proxyproto"
)

// Who the client is, and how much of the server one client may take.
//
// With Config.ProxyProtocol a connection must start with a PROXY protocol
// header (v1 or v2) from a trusted peer (Config.ProxyFrom); its source is
// the client's address from then on: in the session-start message, the
// per-IP limits and the logs. A plain connection's header is read on the
// loop before the HTTP request; a TLS connection's, in its handshake
// goroutine before the TLS handshake. A connection from an untrusted
// peer, or without a valid header, is refused: 400 on the plain listener,
// closed on the TLS one.
//
// Per-IP limits (Config.MaxConnsPerIP, SessionRatePerIP) are checked once
// the client's address is known: at open for a plain connection, after
// its PROXY header with the protocol on, before the handshake for TLS.
// Past them a plain connection is answered 429 with Retry-After when its
// request arrives; a TLS connection is closed before its handshake
// (answering would cost the handshake the limit is there to save).

// ProxyFailure is why a connection's PROXY header was refused: a metric
// label.
type ProxyFailure uint8

const (
	ProxyUntrusted ProxyFailure = iota // the peer is not in ProxyFrom
	ProxyMissing                       // the first bytes are not a PROXY header
	ProxyMalformed                     // a header that does not parse
	numProxyFailures
)

var proxyFailureNames = [numProxyFailures]string{"untrusted", "missing", "malformed"}

func (f ProxyFailure) String() string { return proxyFailureNames[f] }

// ProxyFailureNames lists the labels, by value.
func ProxyFailureNames() []string { return proxyFailureNames[:] }

// ProxyFailures returns how many connections were refused for f. Safe for
// concurrent use.
func (s *Stats) ProxyFailures(f ProxyFailure) int64 { return s.proxyFailed[f].Load() }

// IPLimits returns the per-IP limiter's counters (zero without limits).
// Safe for concurrent use.
func (s *Server) IPLimits() iplimit.Stats {
	if s.perIP == nil {
		return iplimit.Stats{}
	}
	return s.perIP.Stats()
}

// newEdge builds the trusted proxies and the per-IP limiter of cfg.
func (s *Server) newEdge() error {
	if s.cfg.ProxyProtocol {
		from := s.cfg.ProxyFrom
		if len(from) == 0 {
			from = []string{"127.0.0.0/8", "::1/128"}
		}
		t, err := proxyproto.ParseTrusted(from)
		if err != nil {
			return fmt.Errorf("%w: proxy-protocol-from: %v", ErrConfig, err)
		}
		s.trusted = t
	}
	if s.cfg.MaxConnsPerIP > 0 || s.cfg.SessionRatePerIP > 0 {
		lim, err := iplimit.New(iplimit.Config{MaxConnsPerIP: s.cfg.MaxConnsPerIP, Rate: s.cfg.SessionRatePerIP,
			Burst: s.cfg.SessionBurstPerIP, MaxEntries: max(iplimit.DefaultMaxEntries, 2*s.cfg.MaxConns)})
		if err != nil {
			return fmt.Errorf("%w: per-IP limits: %v", ErrConfig, err)
		}
		s.perIP = lim
	}
	return nil
}

// sweepPerIP drops the per-IP entries of addresses that went quiet, every
// few seconds, until the server stops. It is a goroutine of the server's.
func (s *Server) sweepPerIP() {
	defer s.sweeperDone.Done()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.tickCtx.Done():
			return
		case <-tick.C:
			s.perIP.Sweep()
		}
	}
}

// trustedPeer reports whether addr may send a PROXY header.
func (s *Server) trustedPeer(addr net.Addr) bool {
	ap, ok := addrPort(addr)
	return ok && s.trusted.Contains(ap.Addr())
}

func addrPort(addr net.Addr) (netip.AddrPort, bool) {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.AddrPort(), true
	}
	return netip.AddrPort{}, false
}

func (s *Server) proxyFailed(f ProxyFailure, peer net.Addr, err error) {
	s.stats.proxyFailed[f].Add(1)
	s.limitedInfo(&s.proxyLog, "PROXY protocol header refused", zap.Stringer("reason", f),
		zap.String("peer", addrString(peer)), zap.Error(err))
}

// admit counts a connection from client against the per-IP limits. It
// returns 0 when admitted (or with no limits), else how long the client
// should wait before trying again. Safe for concurrent use.
func (s *Server) admit(client netip.Addr) (retry time.Duration, admitted bool) {
	if s.perIP == nil {
		return 0, false
	}
	ok, reason, retry := s.perIP.Admit(client)
	if !ok {
		s.limitedInfo(&s.perIPLog, "connection refused: per-IP limit", zap.Stringer("reason", reason),
			zap.String("client", client.String()), zap.Duration("retry_after", retry))
		return retry, false // at least 1s (Admit)
	}
	return 0, reason == iplimit.Admitted
}

// releasePerIP gives back the per-IP count of a connection admitted
// before a loop took it, once it will not reach one. Safe for concurrent
// use.
func (s *Server) releasePerIP(ac *acceptedConn) {
	if ac.admitted {
		ac.admitted = false
		s.perIP.Release(ac.client.Addr())
	}
}

// tooMany is the answer to a client past its per-IP limit.
func tooMany(retry time.Duration) *codec.HandshakeError {
	secs := int((retry + time.Second - 1) / time.Second)
	return &codec.HandshakeError{Status: 429, Reason: "too many connections or sessions from your address",
		Header: "Retry-After: " + strconv.Itoa(secs) + "\r\n"}
}

// errNoProxyHeader answers a plain connection refused for its PROXY header.
var errNoProxyHeader = &codec.HandshakeError{Status: 400, Reason: "a PROXY protocol header from a trusted proxy is required"}

// readProxyHeader reads the PROXY header at the start of a plain
// session's bytes (ErrNeedMore: not all of it yet). On success the client
// is the header's source and its bytes are consumed; without a valid
// header the request is answered 400 once it is whole. Loop-only.
func (s *Session) readProxyHeader() error {
	srv := s.shard.srv
	buf, _ := s.conn.Peek(-1)
	h, n, err := proxyproto.Parse(buf)
	if errors.Is(err, proxyproto.ErrNeedMore) {
		return err
	}
	s.flags &^= flagAwaitProxy
	if err != nil {
		f := ProxyMalformed
		if errors.Is(err, proxyproto.ErrNotProxy) {
			f = ProxyMissing
		}
		srv.proxyFailed(f, s.conn.RemoteAddr(), err)
		s.flags |= flagRefuseProxy
		s.lingerRefused()
		return err
	}
	_, _ = s.conn.Discard(n)
	if h.Local() {
		// The proxy's own connection (a health check), or one whose
		// source it could not say: no client to count, and counting the
		// proxy's address would let these lock each other out.
		return nil
	}
	s.client = h.Source
	s.checkLimits()
	return nil
}

// checkLimits counts the session against the per-IP limits now that its
// client is known; past them its request is answered 429. Loop-only.
func (s *Session) checkLimits() {
	retry, admitted := s.shard.srv.admit(s.client.Addr())
	if retry > 0 {
		s.flags |= flagRefuseTooMany
		s.retryAfter = retry
		s.lingerRefused()
	}
	if admitted {
		s.flags |= flagAdmitted
	}
}

// refuseLinger is how long a connection whose refusal is decided before
// its request is whole waits for that request (to answer it without a
// reset) before it is answered and closed anyway: not the handshake
// timeout, or refused connections that send nothing would hold their
// places under -max-conns for that long.
const refuseLinger = time.Second

// lingerRefused brings a refused session's deadline down to refuseLinger.
// Loop-only.
func (s *Session) lingerRefused() {
	if sh := s.shard; refuseLinger < sh.srv.cfg.HandshakeTimeout {
		sh.wheel.Schedule(&s.timer, sh.now()+int64(refuseLinger))
	}
}

// decidedRefusal is the answer owed to a session refused before its
// request was read, or nil.
func (s *Session) decidedRefusal() *codec.HandshakeError {
	switch {
	case s.flags&flagRefuseProxy != 0:
		return errNoProxyHeader
	case s.flags&flagRefuseBusy != 0:
		return errShuttingDown
	case s.flags&flagRefuseTooMany != 0:
		return tooMany(s.retryAfter)
	}
	return nil
}

// errShuttingDown answers a connection accepted just before shutdown.
var errShuttingDown = &codec.HandshakeError{Status: 503, Reason: "server shutting down", Header: "Retry-After: 1\r\n"}

// RemoteAddr is the client's address: the PROXY header's source, or the
// peer of the TCP connection.
func (s *Session) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(s.client) }
