package pool

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Policy is what happens to a backend connection when its session ends.
// The zero value is the default, PolicyClose: isolation first.
type Policy uint8

const (
	// PolicyClose never reuses: the connection is closed and reconcile
	// dials a replacement, so sessions still start without a dial. Nothing
	// a backend sends after a session ended (a late final transcript) can
	// reach another session. The default.
	PolicyClose Policy = iota
	// PolicyReset sends Settings.ResetMessage (if any) and waits for
	// ResetAck, or for a quiet period without backend frames, before idle;
	// on timeout the connection is closed. With no message it is a drain:
	// whatever the backend still sends for the old session is dropped. A
	// connection that is mid-message, or holds part of a frame, when the
	// reset ends is closed, never idled. With an ack it is safe for
	// backends that answer the reset message only once they are done with
	// the old session; a quiet drain is safe only for backends whose late
	// frames come within ResetQuiet.
	PolicyReset
	// PolicyReuse puts the connection back to idle at once, if no message
	// was left half-relayed either way and no backend byte is waiting. It
	// is only for backends that never send unprompted: a frame that
	// arrives while idle closes the connection (Counters.Stray), but one
	// still in flight when the connection is leased again reaches the next
	// session.
	PolicyReuse
)

var policyNames = [...]string{"close", "reset", "reuse"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// ParsePolicy reads "reuse", "reset" or "close".
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if s == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("pool: unknown release policy %q (want close, reset or reuse)", s)
}

// Settings are one backend's configured values. Immutable: a change is a
// new Settings swapped in whole.
type Settings struct {
	URL    string // ws://host:port/path?query, or wss://
	Group  string // the backend group routes point at ("" = DefaultGroup)
	Target int    // idle connections to keep ready, all shards together (min idle)
	Max    int    // bound on all its connections in any state, all shards together; 0: none (descriptors bound it)
	Weight int    // balancer weight; 0 means 1

	Policy       Policy
	ResetMessage string        // PolicyReset: text frame sent on release
	ResetAck     string        // PolicyReset: text frame that ends the reset; "" waits for ResetQuiet
	ResetQuiet   time.Duration // PolicyReset without ack: idle after this long without backend frames
	ResetTimeout time.Duration // PolicyReset: close if not done by then

	Subprotocols   []string // offered to the backend at each dial, preference order (its group's)
	SessionStart   bool     // send a session-start message before the first client frame
	SessionHeaders []string // client request headers copied into it

	MaxLifetime  time.Duration // retire connections after this (+-10% jitter); 0 = never
	IdleTimeout  time.Duration // idle connections above Target close after this long unused
	PingInterval time.Duration // quiet connections are pinged this often
	PongTimeout  time.Duration // a ping unanswered this long closes the connection
	DialTimeout  time.Duration // TCP connect plus handshake

	Draining     bool          // no new leases; idle connections close; leased ones close on release
	DrainTimeout time.Duration // once removed or draining, sessions still on it end (1001) after this
}

// DefaultGroup is the group of backends configured without one.
const DefaultGroup = "default"

// Defaults for Settings fields left zero.
const (
	DefaultMaxLifetime         = time.Hour
	DefaultIdleTimeout         = time.Minute
	DefaultBackendPingInterval = 10 * time.Second
	DefaultPongTimeout         = 5 * time.Second
	DefaultDialTimeout         = 5 * time.Second
	DefaultResetTimeout        = 5 * time.Second
	DefaultResetQuiet          = 100 * time.Millisecond
	DefaultDrainTimeout        = 10 * time.Minute
)

// ErrSettings wraps every refusal of a Settings value.
var ErrSettings = errors.New("pool: bad backend settings")

// Normalize checks s and fills its defaults. The error names the field.
func (s Settings) Normalize() (Settings, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, fmt.Errorf("%w: url %q: want ws://host:port/path or wss://", ErrSettings, s.URL)
	}
	if s.Target < 0 || s.Max < 0 || s.Weight < 0 {
		return s, fmt.Errorf("%w: %s: target, max and weight must not be negative (target %d, max %d, weight %d)",
			ErrSettings, s.URL, s.Target, s.Max, s.Weight)
	}
	if s.Max > 0 && s.Target > s.Max {
		return s, fmt.Errorf("%w: %s: target %d above max %d", ErrSettings, s.URL, s.Target, s.Max)
	}
	if s.Weight == 0 {
		s.Weight = 1
	}
	if s.Policy > PolicyReuse {
		return s, fmt.Errorf("%w: %s: unknown policy %d", ErrSettings, s.URL, s.Policy)
	}
	if len(s.ResetAck) > 125 || len(s.ResetMessage) > 1<<20 {
		return s, fmt.Errorf("%w: %s: reset ack over 125 bytes or reset message over 1 MiB", ErrSettings, s.URL)
	}
	if s.Policy == PolicyReset && s.ResetMessage == "" && s.ResetAck != "" {
		return s, fmt.Errorf("%w: %s: reset ack %q is awaited but no reset message asks for it", ErrSettings, s.URL, s.ResetAck)
	}
	for _, d := range []*time.Duration{&s.MaxLifetime, &s.IdleTimeout, &s.PingInterval, &s.PongTimeout, &s.DialTimeout, &s.ResetTimeout, &s.ResetQuiet} {
		if *d < 0 {
			return s, fmt.Errorf("%w: %s: negative duration %v", ErrSettings, s.URL, *d)
		}
	}
	if s.Group == "" {
		s.Group = DefaultGroup
	}
	if s.DrainTimeout < 0 {
		return s, fmt.Errorf("%w: %s: negative drain timeout %v", ErrSettings, s.URL, s.DrainTimeout)
	}
	setDefault(&s.DrainTimeout, DefaultDrainTimeout)
	setDefault(&s.MaxLifetime, DefaultMaxLifetime)
	setDefault(&s.IdleTimeout, DefaultIdleTimeout)
	setDefault(&s.PingInterval, DefaultBackendPingInterval)
	setDefault(&s.PongTimeout, DefaultPongTimeout)
	setDefault(&s.DialTimeout, DefaultDialTimeout)
	setDefault(&s.ResetTimeout, DefaultResetTimeout)
	setDefault(&s.ResetQuiet, DefaultResetQuiet)
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Counters are connection counts that always equal the real state of what
// they count. Written by the owner of each transition (the loop; the
// reconcile goroutine for dialing), read by anyone. Safe for concurrent use.
type Counters struct {
	Total     atomic.Int64 // dialing+idle+leased+releasing+closing; grows only through Reserve
	Dialing   atomic.Int64 // reserved, being dialed off-loop
	Idle      atomic.Int64 // in a ring, ready to lease
	Leased    atomic.Int64 // bound to a session
	Releasing atomic.Int64 // resetting after a session (PolicyReset)
	Closing   atomic.Int64 // closed by us, waiting for gnet to confirm

	Enrolled     atomic.Int64 // connections that joined the pool (dialed, upgraded, enrolled)
	Leases       atomic.Int64 // leases ever
	Releases     atomic.Int64 // connections that went back to idle after a session
	DialFailures atomic.Int64 // dials or handshakes that failed
	Failures     atomic.Int64 // connections lost: closed by the backend, ping timeout, protocol error
	Closed       atomic.Int64 // connections closed for any reason
	Stray        atomic.Int64 // data frames a backend sent while no session held the connection
}

// Backend is one backend server's shared runtime state. Its counters survive
// settings changes (the URL is its identity). Safe for concurrent use.
type Backend struct {
	ID         int    // unique for the pool's life (the order of addition), never reused
	Addr       string // host:port to dial
	Host       string // Host header
	URI        string // request target (path and query)
	TLS        bool   // wss://: connections speak TLS
	ServerName string // wss://: the URL's host, without port (the name its certificate is verified for by default)

	settings atomic.Pointer[Settings]
	Counters

	shards []*shardBackend // one per shard, fixed at creation

	health // dial health, backoff and the probe claim (health.go)

	removed      atomic.Bool            // no longer in the configuration
	MaxReached   atomic.Int64           // reservations refused because the backend had Max connections
	protocol     atomic.Pointer[string] // the subprotocol its newest connection agreed to
	atMax        atomic.Bool            // the last reservation was refused at Max
	atMaxNoted   atomic.Bool            // NoteAtMax reported this episode at Max
	leavingSince atomic.Int64           // unix ns when it was removed or set draining, 0 while it serves
	paused       atomic.Bool            // operator: no new leases; sessions and connections stay
	drained      atomic.Bool            // operator: as paused, and connections close as sessions end
}

// Pause stops new leases; open sessions continue and idle connections stay
// ready for Resume. An operator action that survives config reloads. Safe
// for concurrent use.
func (b *Backend) Pause() { b.paused.Store(true) }

// Drain is Pause plus closing the backend's connections: idle ones at the
// next sweep, leased ones when their sessions end. Safe for concurrent use.
func (b *Backend) Drain() { b.paused.Store(true); b.drained.Store(true) }

// Resume undoes Pause and Drain. Safe for concurrent use.
func (b *Backend) Resume() { b.drained.Store(false); b.paused.Store(false) }

// Paused reports whether leases are stopped (paused or drained).
func (b *Backend) Paused() bool { return b.paused.Load() }

// Drained reports whether the backend is being drained.
func (b *Backend) Drained() bool { return b.drained.Load() }

// TakesLeases reports whether new sessions may lease this backend's
// connections: configured, not draining (config) and not paused (operator).
func (b *Backend) TakesLeases() bool {
	return !b.removed.Load() && !b.Settings().Draining && !b.paused.Load()
}

// KeepsConnections reports whether the pool should hold connections to it:
// false once removed from the configuration or draining.
func (b *Backend) KeepsConnections() bool {
	return !b.removed.Load() && !b.Settings().Draining && !b.drained.Load()
}

// Group is the backend's group. Safe for concurrent use.
func (b *Backend) Group() string { return b.Settings().Group }

// Settings returns the current settings. Safe for concurrent use.
func (b *Backend) Settings() *Settings { return b.settings.Load() }

// SetSettings swaps in new settings (same URL). Safe for concurrent use.
func (b *Backend) SetSettings(s *Settings) { b.settings.Store(s) }

// InShard returns the backend's counters in shard i.
func (b *Backend) InShard(i int) *Counters { return &b.shards[i].Counters }

// Removed reports whether the backend left the configuration.
func (b *Backend) Removed() bool { return b.removed.Load() }

// Reserve takes room for one dial in shard i if the backend-wide total stays
// within Max, and counts it as dialing. The compare-and-swap makes the
// bound hold under any interleaving. Safe for concurrent use.
func (b *Backend) Reserve(i int) bool {
	limit := int64(b.Settings().Max)
	for {
		cur := b.Total.Load()
		if limit > 0 && cur >= limit {
			b.MaxReached.Add(1)
			b.atMax.Store(true)
			return false
		}
		if b.Total.CompareAndSwap(cur, cur+1) {
			break
		}
	}
	if b.atMax.Load() {
		b.atMax.Store(false)
		b.atMaxNoted.Store(false)
	}
	if b.removed.Load() {
		// Removed meanwhile: Prune may drop a backend whose Total it saw
		// at zero, so a reservation must not outlive the removal.
		b.Total.Add(-1)
		return false
	}
	sc := &b.shards[i].Counters
	sc.Total.Add(1)
	sc.Dialing.Add(1)
	b.Dialing.Add(1)
	return true
}

// Protocol is the subprotocol the backend's newest connection agreed to
// ("" for none, or before any). Safe for concurrent use.
func (b *Backend) Protocol() string {
	if p := b.protocol.Load(); p != nil {
		return *p
	}
	return ""
}

// Lane names a group's connections that agreed to one subprotocol:
// sessions wait for, lease and move connections per lane. A group whose
// backends speak no subprotocol is one lane, named after it.
func Lane(group, protocol string) string {
	if protocol == "" {
		return group
	}
	return group + "\x00" + protocol
}

func splitLane(lane string) (group, protocol string) {
	group, protocol, _ = strings.Cut(lane, "\x00")
	return group, protocol
}

// AtMax reports whether the last reservation was refused because the
// backend has Max connections. Safe for concurrent use.
func (b *Backend) AtMax() bool { return b.atMax.Load() }

// NoteAtMax reports true once per episode at Max (from the first refused
// reservation until one succeeds again): whoever gets true says so in the
// log, so an operator hears of the cap once, not per dial. Safe for
// concurrent use.
func (b *Backend) NoteAtMax() bool { return b.atMax.Load() && b.atMaxNoted.CompareAndSwap(false, true) }

// unreserve returns a dialing reservation (the dial failed or was not enrolled).
func (b *Backend) unreserve(i int) {
	sc := &b.shards[i].Counters
	sc.Dialing.Add(-1)
	sc.Total.Add(-1)
	b.Dialing.Add(-1)
	b.Total.Add(-1)
}

// DialAborted gives back a reservation without counting a failure (the
// pool is stopping). Safe for concurrent use.
func (b *Backend) DialAborted(i int) { b.unreserve(i) }

// backendAddress is what a backend URL says about where and how to dial.
type backendAddress struct {
	addr, host, uri, serverName string
	tls                         bool
}

func parseBackendURL(raw string) (backendAddress, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return backendAddress{}, err
	}
	a := backendAddress{host: u.Host, addr: u.Host, serverName: u.Hostname(), tls: u.Scheme == "wss" || u.Scheme == "https"}
	if u.Port() == "" {
		port := "80"
		if a.tls {
			port = "443"
		}
		a.addr = net.JoinHostPort(u.Hostname(), port)
	}
	a.uri = u.RequestURI()
	if !strings.HasPrefix(a.uri, "/") {
		a.uri = "/"
	}
	return a, nil
}
