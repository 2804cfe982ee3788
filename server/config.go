package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/codec"
)

// Config is what a Server needs. Zero fields take the defaults below
// (see withDefaults); negative durations or sizes are refused.
type Config struct {
	// Addr is the plain listen address, "host:port" (port 0 picks a free
	// one); "" for none (then TLSAddr).
	Addr string
	// TLSAddr, if set, is a second listener whose connections speak TLS
	// (with the TLS configuration); sessions on both are alike.
	TLSAddr string
	// TLS is the TLS listener's configuration (certificates, versions,
	// client authentication); required with TLSAddr.
	TLS *tls.Config
	// TLSHandshakes bounds the TLS handshakes running at once (each on a
	// goroutine of its own, off the loops); past it the TLS listener
	// accepts nothing until one ends (default 128 per core).
	TLSHandshakes int
	// Loops is the number of event loops, one shard each (default GOMAXPROCS).
	Loops int

	// MaxConns caps open client TCP connections; a connection past it is
	// answered 503 and closed as soon as it is accepted. Default: what fits
	// under the open-file limit after a reserve (descriptorReserve), at one
	// descriptor per session for an endpoint and two for the gateway.
	MaxConns int
	// MaxHeaderBytes caps the upgrade request header block (431 past it).
	MaxHeaderBytes int
	// MaxFrameBytes caps one frame's payload (1009 past it; default MaxMessageBytes).
	MaxFrameBytes int64
	// MaxMessageBytes caps a whole, possibly fragmented, message (1009; default 1 MiB).
	MaxMessageBytes int64
	// FlowWindow bounds what a session holds per direction in user space
	// (default 256 KiB): past half of it queued toward a peer, whoever
	// produces the bytes stops being read until the queue is below an
	// eighth (see flow.go).
	FlowWindow int
	// StallTimeout is how long a paused connection waits for the queue it
	// waits on to drain before its session is closed: 1008 for a client
	// that stopped reading, 1013 when the backend did (default 30 s).
	StallTimeout time.Duration
	// FailDrainQuiet and FailDrainMax bound the drain after a client's
	// protocol error (see SessionHandler.Failing): the close goes out once
	// the handler relayed nothing for FailDrainQuiet (default 100 ms), at
	// most FailDrainMax after the error (default 1 s).
	FailDrainQuiet, FailDrainMax time.Duration
	// Subprotocols the server speaks, in preference order (optional).
	Subprotocols []string

	// ProxyProtocol: every connection starts with a PROXY protocol
	// header (v1 or v2) from a peer in ProxyFrom (CIDRs or addresses;
	// default loopback), whose source is the client's address (edge.go).
	ProxyProtocol bool
	ProxyFrom     []string
	// MaxConnsPerIP bounds a client address's open connections, and
	// SessionRatePerIP its new ones per second (a token bucket of
	// SessionBurstPerIP, default the rate rounded up): past them, 429
	// with Retry-After. IPv6 clients count per /64. Zero: no limit.
	MaxConnsPerIP     int
	SessionRatePerIP  float64
	SessionBurstPerIP int

	HandshakeTimeout time.Duration // request must be complete by then (default 10 s)
	PingInterval     time.Duration // ping after this long without inbound traffic (default 30 s)
	PongTimeout      time.Duration // close if nothing arrives this long after a ping (default 10 s)
	CloseTimeout     time.Duration // wait this long for the peer's close reply (default 5 s)
	TickInterval     time.Duration // timer resolution of every shard (default 100 ms)

	// Logger receives everything; default zap.NewNop().
	Logger *zap.Logger
	// Handler decides what sessions do with messages (default Echo).
	Handler Handler
	// OnShard, if set, runs on each event loop as its shard is created,
	// before any client arrives (the gateway attaches the pool's part of
	// that loop). Loop-only, must not block.
	OnShard func(*Shard)
	// OnShutdown, if set, runs on each shard once its sessions are gone
	// during Shutdown (the gateway closes its backend connections).
	OnShutdown func(*Shard)
	// Gateway says each session uses two descriptors (its own and its
	// backend connection's), for the default MaxConns.
	Gateway bool
	// OnSessionEnd, if set, gets a record of every upgraded session that
	// ended (the access log). It runs on the loop: it must not block.
	OnSessionEnd func(*SessionRecord)
	// ShutdownGrace is how long Shutdown lets sessions end by themselves
	// (new ones refused) before it sends them close 1001.
	ShutdownGrace time.Duration
}

// Defaults.
const (
	DefaultMaxMessageBytes    = 1 << 20
	DefaultFlowWindow         = 256 << 10
	DefaultStallTimeout       = 30 * time.Second
	DefaultFailDrainQuiet     = 100 * time.Millisecond
	DefaultFailDrainMax       = time.Second
	DefaultHandshakeTimeout   = 10 * time.Second
	DefaultClientPingInterval = 30 * time.Second
	DefaultPongTimeout        = 10 * time.Second
	DefaultCloseTimeout       = 5 * time.Second
	DefaultTickInterval       = 100 * time.Millisecond
)

// ErrConfig wraps every configuration refusal.
var ErrConfig = errors.New("server: bad config")

// WithDefaults is c with every zero field set to its default, or the
// reason c is refused.
func (c Config) WithDefaults() (Config, error) { return c.withDefaults() }

// DefaultLoops is the default number of event loops: one per usable CPU.
func DefaultLoops() int { return runtime.GOMAXPROCS(0) }

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" && c.TLSAddr == "" {
		return c, fmt.Errorf("%w: no listen address", ErrConfig)
	}
	if c.TLSAddr != "" && c.TLS == nil {
		return c, fmt.Errorf("%w: a TLS listener needs certificates", ErrConfig)
	}
	if c.TLSHandshakes <= 0 {
		// A handshake is mostly CPU and one client round trip: 128 per
		// core keeps the cores busy for clients up to ~60 ms away, while
		// a burst does not hold thousands of half-done handshakes (each
		// tens of KB) that make every one of them slow.
		c.TLSHandshakes = 128 * runtime.GOMAXPROCS(0)
	}
	for name, v := range map[string]int64{
		"loops": int64(c.Loops), "max-conns": int64(c.MaxConns), "max-header-bytes": int64(c.MaxHeaderBytes),
		"max-frame-bytes": c.MaxFrameBytes, "max-message-bytes": c.MaxMessageBytes, "flow-window": int64(c.FlowWindow), "stall-timeout": int64(c.StallTimeout),
		"fail-drain-quiet": int64(c.FailDrainQuiet), "fail-drain-max": int64(c.FailDrainMax),
		"handshake-timeout": int64(c.HandshakeTimeout), "ping-interval": int64(c.PingInterval), "pong-timeout": int64(c.PongTimeout),
		"close-timeout": int64(c.CloseTimeout), "tick-interval": int64(c.TickInterval),
	} {
		if v < 0 {
			return c, fmt.Errorf("%w: %s is negative (%d)", ErrConfig, name, v)
		}
	}
	if c.Loops == 0 {
		c.Loops = DefaultLoops()
	}
	if c.MaxConns == 0 {
		perSession := 1
		if c.Gateway {
			perSession = 2 // the client's and its backend connection
		}
		c.MaxConns = defaultMaxConns(perSession)
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = codec.DefaultMaxHeaderBytes
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxFrameBytes == 0 || c.MaxFrameBytes > c.MaxMessageBytes {
		c.MaxFrameBytes = c.MaxMessageBytes
	}
	if c.FlowWindow == 0 {
		c.FlowWindow = DefaultFlowWindow
	}
	if c.FlowWindow < 16<<10 {
		return c, fmt.Errorf("%w: flow-window %d is below 16 KiB", ErrConfig, c.FlowWindow)
	}
	setDuration(&c.StallTimeout, DefaultStallTimeout)
	setDuration(&c.FailDrainQuiet, DefaultFailDrainQuiet)
	setDuration(&c.FailDrainMax, DefaultFailDrainMax)
	setDuration(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDuration(&c.PingInterval, DefaultClientPingInterval)
	setDuration(&c.PongTimeout, DefaultPongTimeout)
	setDuration(&c.CloseTimeout, DefaultCloseTimeout)
	setDuration(&c.TickInterval, DefaultTickInterval)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Handler == nil {
		c.Handler = Echo{}
	}
	if c.ShutdownGrace < 0 {
		return c, fmt.Errorf("%w: shutdown-grace is negative", ErrConfig)
	}
	return c, nil
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// defaultMaxConns is how many client connections fit under the open-file
// limit with descriptorReserve left over, each session taking perSession
// descriptors. (Go raises the soft limit to the hard one at start.)
func defaultMaxConns(perSession int) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == 0 {
		return 1000
	}
	n := int(min(lim.Cur, 1<<30))
	return max(1, (n-descriptorReserve(n))/perSession)
}

// descriptorReserve is what the default MaxConns leaves of an open-file
// limit of n for everything but sessions: listeners, the loops' pollers,
// idle backend connections and dials, the admin endpoint, logs and the
// configuration database. 128 plus 1/64 of the limit (440 at 20,000).
func descriptorReserve(n int) int { return 128 + n/64 }
