package relay

import (
	"slices"
	"strings"
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
	proxy.routing.Store(NewRouting(0, nil, pool.DefaultGroup, nil, nil))
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
	routing := p.routing.Load()
	route, ok := routing.Lookup(req.URI)
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
	protocol, err := p.subprotocol(group, routing.Subprotocols[group], req.Protocols)
	if err != nil {
		return nil, err
	}
	if len(req.Protocols) > 0 {
		s.SetSubprotocol(protocol) // the 101 names it; a client that offered none hears none
	}
	b := &binding{proxy: p, s: s, sp: sp, group: group, lane: pool.Lane(group, protocol)}
	if p.sessionStartIn(group) {
		b.start = &startInfo{req: req, subject: claims.Subject, claims: p.auth.forwardedClaims(claims.Raw), tokenChecked: p.auth != nil}
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

// subprotocol picks the subprotocol of a session of group whose client
// offered offered: the first the group speaks (its preference) that the
// client offered and a backend of the group agreed to. A client offering
// none gets the group's first a backend agreed to (unless the group
// requires one). The error is the refusal (400): nothing offered is
// spoken here, or what is was not what the backends chose. (Each backend
// is offered the group's whole list and its connections carry the one it
// picked.)
func (p *Proxy) subprotocol(group string, sp Subprotocols, offered []string) (string, error) {
	if len(offered) == 0 {
		if sp.Required {
			return "", &codec.HandshakeError{Status: 400, Reason: "a subprotocol is required: one of " + strings.Join(sp.Spoken, ", ")}
		}
		for _, name := range sp.Spoken {
			if p.pool.Speaks(group, name) {
				return name, nil
			}
		}
		if len(sp.Spoken) == 0 || p.pool.Speaks(group, "") {
			return "", nil
		}
		return sp.Spoken[0], nil
	}
	known := false
	for _, name := range sp.Spoken {
		if !slices.Contains(offered, name) {
			continue
		}
		if p.pool.Speaks(group, name) {
			return name, nil
		}
		known = true
	}
	if known {
		// Listed for the group, but its backends, offered the whole list,
		// each agreed to another.
		return "", &codec.HandshakeError{Status: 400, Reason: "no backend agreed to the offered subprotocols (they chose another of: " +
			strings.Join(sp.Spoken, ", ") + ")"}
	}
	spoken := "none"
	if len(sp.Spoken) > 0 {
		spoken = strings.Join(sp.Spoken, ", ")
	}
	return "", &codec.HandshakeError{Status: 400, Reason: "no offered subprotocol is spoken here (spoken: " + spoken + ")"}
}
