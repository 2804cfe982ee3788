package relay

import (
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/jwtauth"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// DefaultAcquireTimeout is how long a new session waits for an idle
// backend connection before close 1013.
const DefaultAcquireTimeout = 3 * time.Second

// Proxy is the gateway's server.Handler: it routes a session by its path
// to a backend group and binds it to a connection of that group. Safe for
// concurrent use (its sessions are each on their own loop).
type Proxy struct {
	pool           *pool.Pool
	acquireTimeout time.Duration
	routing        atomic.Pointer[Routing] // the version in force, swapped whole
	auth           *auth                   // the token check (RequireToken); nil: none
}

// New returns the relay for p's backends.
func New(p *pool.Pool, acquireTimeout time.Duration) *Proxy {
	if acquireTimeout <= 0 {
		acquireTimeout = DefaultAcquireTimeout
	}
	proxy := &Proxy{pool: p, acquireTimeout: acquireTimeout}
	proxy.routing.Store(NewRouting(0, nil, pool.DefaultGroup, nil))
	return proxy
}

// SetRouting installs a routing version (the configuration applier
// calls it). Safe for concurrent use.
func (p *Proxy) SetRouting(r *Routing) { p.routing.Store(r) }

// Routing returns the routing in force. Safe for concurrent use.
func (p *Proxy) Routing() *Routing { return p.routing.Load() }

// Upgrade routes the session to a backend group by its path, and refuses
// it before the upgrade when no route matches (404), its page's origin is
// not allowed there (403), its token is missing or bad (401, with
// RequireToken), or no backend of the group can serve it (503).
func (p *Proxy) Upgrade(s *server.Session, req *codec.UpgradeRequest) (server.SessionHandler, error) {
	sp := p.pool.Shard(s.Shard().Index())
	route, ok := p.routing.Load().Lookup(req.URI)
	if !ok {
		return nil, &codec.HandshakeError{Status: 404, Reason: "no route for this path"}
	}
	// A browser always names the page's origin; a client without one
	// (not a browser) is not a page riding its user's cookies.
	if req.Origin != "" && !route.Origins.Allows(req.Origin) {
		return nil, &codec.HandshakeError{Status: 403, Reason: "origin not allowed"}
	}
	var claims jwtauth.Claims
	if p.auth != nil {
		var err error
		if claims, err = p.auth.check(req); err != nil {
			return nil, err
		}
	}
	group := route.Group
	if !sp.Available(group) {
		return nil, &codec.HandshakeError{Status: 503, Reason: "no backend available", Header: "Retry-After: 1\r\n"}
	}
	b := &binding{proxy: p, s: s, sp: sp, group: group}
	if p.sessionStartIn(group) {
		b.start = &startInfo{req: req, subject: claims.Subject, claims: p.auth.forwardedClaims(claims.Raw)}
	}
	return b, nil
}

// sessionStartIn reports whether a backend of group wants the session
// start, so the request is kept until the session is bound.
func (p *Proxy) sessionStartIn(group string) bool {
	for _, b := range p.pool.Backends() {
		if b.Group() == group && b.Settings().SessionStart && !b.Removed() {
			return true
		}
	}
	return false
}
