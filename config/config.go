package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/origin"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/relay"
)

// GatewayConfig is wsgate's configuration model, whatever its source (flags, a
// YAML file, PostgreSQL). Field names are the YAML keys; docs/config.md
// documents each. Listener, limits and timeouts are read at start; the
// groups, backends and routes apply live.
type GatewayConfig struct {
	Listen       string        `yaml:"listen"`
	Limits       Limits        `yaml:"limits"`
	Timeouts     Timeouts      `yaml:"timeouts"`
	Groups       []Group       `yaml:"groups"`
	Routes       []RouteConfig `yaml:"routes"`
	DefaultGroup string        `yaml:"default_group"` // group for unrouted paths; "" = 404
	// AllowOrigins are the web origins whose pages may open a session
	// where a route names none ("https://app.example.com",
	// "https://*.example.com"); empty: any. Others get 403.
	AllowOrigins []string `yaml:"allow_origins"`
}

// Limits bound what clients may do (0: the server's default).
type Limits struct {
	MaxConns        int   `yaml:"max_conns"`
	MaxHeaderBytes  int   `yaml:"max_header_bytes"`
	MaxFrameBytes   int64 `yaml:"max_frame_bytes"`
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	FlowWindow      int   `yaml:"flow_window"` // bytes held per session and direction (backpressure past half)
}

// Timeouts of client sessions (0: the server's default).
type Timeouts struct {
	Handshake     time.Duration `yaml:"handshake"`
	PingInterval  time.Duration `yaml:"ping_interval"`
	PongTimeout   time.Duration `yaml:"pong_timeout"`
	Close         time.Duration `yaml:"close"`
	Acquire       time.Duration `yaml:"acquire"`
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	Stall         time.Duration `yaml:"stall"` // a peer that has not drained its queue this long is closed
}

// Group is a set of interchangeable backends that routes point at.
type Group struct {
	Name string `yaml:"name"`
	// Balance picks the backend of a new session's connection:
	// least-leased (the default: fewest sessions for the backend's weight),
	// random (in proportion to the weights) or most-idle.
	Balance string `yaml:"balance"`
	// Subprotocols the group's backends speak, preference order: each
	// connection is dialed offering them and keeps the one its backend
	// agreed to; a client is given the first of them it offers that a
	// backend agreed to, and gets a connection of that subprotocol. A
	// client offering none is served on the first (no header in its 101)
	// unless SubprotocolRequired; one offering only others gets 400.
	Subprotocols        []string        `yaml:"subprotocols"`
	SubprotocolRequired bool            `yaml:"subprotocol_required"`
	Backends            []BackendConfig `yaml:"backends"`
}

// BackendConfig is one backend server.
type BackendConfig struct {
	URL            string        `yaml:"url"`
	PoolTarget     int           `yaml:"pool_target"` // idle connections kept ready (min idle)
	MaxConns       int           `yaml:"max_conns"`   // bound on its connections, any state (0: default)
	Weight         int           `yaml:"weight"`      // share of new sessions in its group (0: 1)
	ReleasePolicy  string        `yaml:"release_policy"`
	ResetMessage   string        `yaml:"reset_message"`
	ResetAck       string        `yaml:"reset_ack"`
	ResetQuiet     time.Duration `yaml:"reset_quiet"`
	ResetTimeout   time.Duration `yaml:"reset_timeout"`
	SessionStart   bool          `yaml:"session_start"`
	SessionHeaders []string      `yaml:"session_headers"`
	Enabled        *bool         `yaml:"enabled"` // nil: true
	Draining       bool          `yaml:"draining"`
	DrainTimeout   time.Duration `yaml:"drain_timeout"`
	MaxLifetime    time.Duration `yaml:"max_lifetime"`
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
	PingInterval   time.Duration `yaml:"ping_interval"`
	PongTimeout    time.Duration `yaml:"pong_timeout"`
	DialTimeout    time.Duration `yaml:"dial_timeout"`
}

// RouteConfig maps a path (prefix, or exact) to a group.
type RouteConfig struct {
	Path         string   `yaml:"path"`
	Exact        bool     `yaml:"exact"`
	Group        string   `yaml:"group"`
	AllowOrigins []string `yaml:"allow_origins"` // replaces the top-level list for this route
}

// ErrInvalid wraps every validation failure; the message names the field
// and the value.
var ErrInvalid = errors.New("config: invalid configuration")

// Snapshot is one validated, immutable version of the configuration, in
// the form the pool and the relay take.
type Snapshot struct {
	Version  int64
	Source   string // "flags", "file:PATH", "postgres"
	Config   *GatewayConfig
	Backends []pool.Settings
	Routing  *relay.Routing
	// Subprotocols are the groups' subprotocols (a group without any is
	// absent).
	Subprotocols map[string]relay.Subprotocols
	Balancers    map[string]pool.Balancer // per group
}

// Compile validates c and builds a snapshot. Any invalid field rejects the
// whole configuration; the error names the field and its value.
func Compile(c *GatewayConfig, source string) (*Snapshot, error) {
	fail := func(field string, value any, why string) (*Snapshot, error) {
		return nil, fmt.Errorf("%w: %s = %v: %s", ErrInvalid, field, value, why)
	}
	if c.Limits.MaxConns < 0 || c.Limits.MaxHeaderBytes < 0 || c.Limits.MaxFrameBytes < 0 ||
		c.Limits.MaxMessageBytes < 0 || c.Limits.FlowWindow < 0 {
		return fail("limits", fmt.Sprintf("%+v", c.Limits), "limits must not be negative")
	}
	for name, d := range map[string]time.Duration{"timeouts.handshake": c.Timeouts.Handshake, "timeouts.ping_interval": c.Timeouts.PingInterval,
		"timeouts.pong_timeout": c.Timeouts.PongTimeout, "timeouts.close": c.Timeouts.Close, "timeouts.acquire": c.Timeouts.Acquire,
		"timeouts.shutdown_grace": c.Timeouts.ShutdownGrace, "timeouts.stall": c.Timeouts.Stall} {
		if d < 0 {
			return fail(name, d, "must not be negative")
		}
	}
	snap := &Snapshot{Source: source, Config: c}
	groups := make(map[string]bool)
	urls := make(map[string]string)
	for gi, g := range c.Groups {
		gf := fmt.Sprintf("groups[%d]", gi)
		if g.Name == "" {
			return fail(gf+".name", `""`, "a group needs a name")
		}
		if groups[g.Name] {
			return fail(gf+".name", g.Name, "duplicate group")
		}
		bal, err := pool.ParseBalancer(g.Balance)
		if err != nil {
			return fail(gf+".balance", fmt.Sprintf("%q", g.Balance), "want "+strings.Join(pool.BalancerNames, ", "))
		}
		if snap.Balancers == nil {
			snap.Balancers = make(map[string]pool.Balancer)
		}
		snap.Balancers[g.Name] = bal
		for i, p := range g.Subprotocols {
			if !codec.ValidToken(p) {
				return fail(fmt.Sprintf("%s.subprotocols[%d]", gf, i), fmt.Sprintf("%q", p), "not a token (RFC 6455 4.1: letters, digits and !#$%&'*+-.^_`|~)")
			}
		}
		if g.SubprotocolRequired && len(g.Subprotocols) == 0 {
			return fail(gf+".subprotocol_required", true, "no subprotocols to require")
		}
		if len(g.Subprotocols) > 0 {
			if snap.Subprotocols == nil {
				snap.Subprotocols = make(map[string]relay.Subprotocols)
			}
			snap.Subprotocols[g.Name] = relay.Subprotocols{Spoken: g.Subprotocols, Required: g.SubprotocolRequired}
		}
		groups[g.Name] = true
		for bi, b := range g.Backends {
			bf := fmt.Sprintf("%s.backends[%d]", gf, bi)
			st, err := b.settings(g.Name, bf)
			if err != nil {
				return nil, err
			}
			st.Subprotocols = g.Subprotocols
			if prev, dup := urls[st.URL]; dup {
				return fail(bf+".url", st.URL, "duplicate backend (also "+prev+")")
			}
			urls[st.URL] = bf
			snap.Backends = append(snap.Backends, st)
		}
	}
	if len(snap.Backends) == 0 {
		// A source emptied by mistake (every row deleted, a truncated
		// file) would refuse every session: never applied, the last good
		// version stays.
		return fail("groups", fmt.Sprintf("%d groups", len(c.Groups)), "no backend in any group: every session would be refused")
	}
	var routes []relay.Route
	seen := make(map[string]bool)
	for ri, r := range c.Routes {
		rf := fmt.Sprintf("routes[%d]", ri)
		if !strings.HasPrefix(r.Path, "/") {
			return fail(rf+".path", fmt.Sprintf("%q", r.Path), "must start with /")
		}
		if !groups[r.Group] {
			return fail(rf+".group", fmt.Sprintf("%q", r.Group), "no such group")
		}
		key := fmt.Sprintf("%v %s", r.Exact, r.Path)
		if seen[key] {
			return fail(rf+".path", r.Path, "duplicate route")
		}
		seen[key] = true
		origins, err := origin.Parse(r.AllowOrigins)
		if err != nil {
			return fail(rf+".allow_origins", fmt.Sprintf("%q", r.AllowOrigins), err.Error())
		}
		routes = append(routes, relay.Route{Path: r.Path, Exact: r.Exact, Group: r.Group, Origins: origins})
	}
	origins, err := origin.Parse(c.AllowOrigins)
	if err != nil {
		return fail("allow_origins", fmt.Sprintf("%q", c.AllowOrigins), err.Error())
	}
	if c.DefaultGroup != "" && !groups[c.DefaultGroup] {
		return fail("default_group", fmt.Sprintf("%q", c.DefaultGroup), "no such group")
	}
	snap.Routing = relay.NewRouting(0, routes, c.DefaultGroup, origins, snap.Subprotocols)
	return snap, nil
}

// settings validates one backend and converts it to pool settings.
func (b BackendConfig) settings(group, field string) (pool.Settings, error) {
	fail := func(f string, value any, why string) (pool.Settings, error) {
		return pool.Settings{}, fmt.Errorf("%w: %s.%s = %v: %s", ErrInvalid, field, f, value, why)
	}
	u, err := url.Parse(b.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Hostname() == "" {
		return fail("url", fmt.Sprintf("%q", b.URL), "want ws://host:port/path or wss://host:port/path (the port defaults to 80 and 443)")
	}
	if b.PoolTarget < 0 {
		return fail("pool_target", b.PoolTarget, "must not be negative")
	}
	if b.MaxConns < 0 {
		return fail("max_conns", b.MaxConns, "must not be negative")
	}
	if b.MaxConns > 0 && b.PoolTarget > b.MaxConns {
		return fail("pool_target", b.PoolTarget, fmt.Sprintf("above max_conns %d", b.MaxConns))
	}
	if b.Weight < 0 {
		return fail("weight", b.Weight, "must not be negative")
	}
	var policy pool.Policy // "" is the default, close
	if b.ReleasePolicy != "" {
		if policy, err = pool.ParsePolicy(b.ReleasePolicy); err != nil {
			return fail("release_policy", fmt.Sprintf("%q", b.ReleasePolicy), "want close, reset or reuse")
		}
	}
	for name, d := range map[string]time.Duration{"reset_quiet": b.ResetQuiet, "reset_timeout": b.ResetTimeout, "drain_timeout": b.DrainTimeout,
		"max_lifetime": b.MaxLifetime, "idle_timeout": b.IdleTimeout, "ping_interval": b.PingInterval,
		"pong_timeout": b.PongTimeout, "dial_timeout": b.DialTimeout} {
		if d < 0 {
			return fail(name, d, "must not be negative")
		}
	}
	for i, h := range b.SessionHeaders {
		if h == "" || strings.ContainsAny(h, " \t\r\n:") {
			return fail(fmt.Sprintf("session_headers[%d]", i), fmt.Sprintf("%q", h), "not a header name")
		}
	}
	st := pool.Settings{
		URL: b.URL, Group: group, Target: b.PoolTarget, Max: b.MaxConns, Weight: b.Weight, Policy: policy,
		ResetMessage: b.ResetMessage, ResetAck: b.ResetAck, ResetQuiet: b.ResetQuiet, ResetTimeout: b.ResetTimeout,
		SessionStart: b.SessionStart, SessionHeaders: b.SessionHeaders,
		Draining: b.Draining || (b.Enabled != nil && !*b.Enabled), DrainTimeout: b.DrainTimeout,
		MaxLifetime: b.MaxLifetime, IdleTimeout: b.IdleTimeout,
		PingInterval: b.PingInterval, PongTimeout: b.PongTimeout, DialTimeout: b.DialTimeout,
	}
	st, err = st.Normalize()
	if err != nil {
		return fail("url", b.URL, err.Error())
	}
	return st, nil
}
