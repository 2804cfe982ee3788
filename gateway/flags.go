package gateway

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/wsgate/wsgate/config"
	"github.com/wsgate/wsgate/internal/flagvalue"
	"github.com/wsgate/wsgate/internal/jwtauth"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/reconcile"
	"github.com/wsgate/wsgate/relay"
	"github.com/wsgate/wsgate/server"
)

// EndpointFlags are the flags every mode of the binary shares: listener,
// limits, client timers, logs. Zero values mean the server's defaults.
type EndpointFlags struct {
	Server          server.Config
	Subprotocols    flagvalue.StringList
	LogFormat       string
	LogLevel        string
	ShutdownTimeout time.Duration

	TLSCerts, TLSKeys flagvalue.StringList
	TLSMinVersion     string
	TLSClientCA       string
	ProxyFrom         flagvalue.StringList
}

// Register defines the endpoint flags on fs.
func (f *EndpointFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Server.Addr, "listen", "127.0.0.1:8080", "plain (ws://) listen address host:port; \"\" for none (then -tls-listen)")
	fs.StringVar(&f.Server.TLSAddr, "tls-listen", "", "TLS (wss://) listen address host:port, beside -listen or alone")
	fs.Var(&f.TLSCerts, "tls-cert", "TLS certificate chain file, PEM (repeatable, paired in order with -tls-key; chosen by SNI, the first by default)")
	fs.Var(&f.TLSKeys, "tls-key", "TLS private key file, PEM (repeatable, one per -tls-cert)")
	fs.StringVar(&f.TLSMinVersion, "tls-min-version", "1.2", "oldest TLS version accepted: 1.2 or 1.3")
	fs.StringVar(&f.TLSClientCA, "tls-client-ca", "", "CA file, PEM: TLS clients must present a certificate it signed")
	fs.BoolVar(&f.Server.ProxyProtocol, "proxy-protocol", false, "every connection starts with a PROXY protocol header (v1 or v2) from a trusted proxy; "+
		"its source is the client's address (session_start, per-IP limits, logs); a connection without one is refused (400, or closed on the TLS listener)")
	fs.Var(&f.ProxyFrom, "proxy-protocol-from", "with -proxy-protocol: CIDR or address of a proxy allowed to send the header (repeatable; default loopback)")
	fs.IntVar(&f.Server.MaxConnsPerIP, "max-conns-per-ip", 0, "open connections one client address may hold (IPv6: per /64); past it 429 with Retry-After (0: no limit)")
	fs.Float64Var(&f.Server.SessionRatePerIP, "session-rate-per-ip", 0, "new connections per second one client address may open, on average (0: no limit); past it 429 with Retry-After")
	fs.IntVar(&f.Server.SessionBurstPerIP, "session-burst-per-ip", 0, "with -session-rate-per-ip: how many at once (default the rate, rounded up)")
	fs.IntVar(&f.Server.TLSHandshakes, "tls-handshakes", 0, "TLS handshakes run at once, off the event loops; past it new TLS connections wait in the listen queue (default 128 per core)")
	fs.IntVar(&f.Server.Loops, "loops", 0, "event loops (shards); 0 = GOMAXPROCS")
	fs.IntVar(&f.Server.MaxConns, "max-conns", 0, "max client connections; past it a connection is answered 503 and closed at once "+
		"(default: what fits under the open-file limit after a reserve, two descriptors per gateway session)")
	fs.IntVar(&f.Server.MaxHeaderBytes, "max-header-bytes", 0, "max upgrade request header bytes before 431 (default 8 KiB)")
	fs.Int64Var(&f.Server.MaxFrameBytes, "max-frame-bytes", 0, "max frame payload, from clients and from backends, before 1009 (default max-message-bytes)")
	fs.Int64Var(&f.Server.MaxMessageBytes, "max-message-bytes", 0, "max message size, from clients and from backends, before 1009 (default 1 MiB)")
	fs.IntVar(&f.Server.FlowWindow, "flow-window", 0, "bytes held per session and direction: past half of it queued toward a peer, its source is not read (backpressure) until below an eighth (default 256 KiB)")
	fs.DurationVar(&f.Server.StallTimeout, "stall-timeout", 0, "close a session whose peer has not drained its queue this long: 1008 to a client that stopped reading, 1013 when its backend did (default 30s)")
	fs.DurationVar(&f.Server.HandshakeTimeout, "handshake-timeout", 0, "time to receive the upgrade request (default 10s)")
	fs.DurationVar(&f.Server.PingInterval, "ping-interval", 0, "ping a client silent this long (default 30s)")
	fs.DurationVar(&f.Server.PongTimeout, "pong-timeout", 0, "close a pinged client silent this long (default 10s)")
	fs.DurationVar(&f.Server.CloseTimeout, "close-timeout", 0, "wait this long for a close reply (default 5s)")
	fs.Var(&f.Subprotocols, "subprotocol", "subprotocol spoken, in preference order (repeatable). Gateway: the backends' (each connection is dialed offering them; "+
		"a client gets the first it offers that its backend agreed to; offering only others: 400). Echo: the ones it accepts")
	fs.StringVar(&f.LogFormat, "log-format", "console", "log format: console or json")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM/SIGINT, time for sessions to close before exit")
}

// ServerConfig is the endpoint's server configuration (the subprotocol
// list and the TLS listener's configuration included), and the TLS
// certificates to reload (nil without -tls-listen); the caller adds the
// logger and handler.
func (f *EndpointFlags) ServerConfig() (server.Config, *tlsconf.Server, error) {
	cfg := f.Server
	cfg.Subprotocols = f.Subprotocols
	cfg.ProxyFrom = f.ProxyFrom
	if len(f.ProxyFrom) > 0 && !cfg.ProxyProtocol {
		return cfg, nil, fmt.Errorf("%w: -proxy-protocol-from needs -proxy-protocol", ErrFlags)
	}
	if cfg.TLSAddr == "" {
		if len(f.TLSCerts)+len(f.TLSKeys) > 0 || f.TLSClientCA != "" {
			return cfg, nil, fmt.Errorf("%w: -tls-cert, -tls-key and -tls-client-ca need -tls-listen", ErrFlags)
		}
		return cfg, nil, nil
	}
	certs, err := tlsconf.NewServer(tlsconf.ServerOptions{CertFiles: f.TLSCerts, KeyFiles: f.TLSKeys,
		ClientCA: f.TLSClientCA, MinVersion: f.TLSMinVersion})
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: %v", ErrFlags, err)
	}
	cfg.TLS = certs.Config()
	return cfg, certs, nil
}

// Flags are the gateway mode's flags: the endpoint's, the backends and
// their pool settings, and the configuration sources.
type Flags struct {
	EndpointFlags
	Backends       flagvalue.StringList
	PoolSize       int
	PoolMax        int
	Policy         string
	ResetMessage   string
	ResetAck       string
	ResetQuiet     time.Duration
	ResetTimeout   time.Duration
	SessionStart   bool
	SessionHeaders flagvalue.StringList
	AcquireTimeout time.Duration
	MaxLifetime    time.Duration
	IdleTimeout    time.Duration
	BackendPing    time.Duration
	BackendPong    time.Duration
	DialTimeout    time.Duration
	SocketBuffer   int
	Balance        string
	AllowOrigins   flagvalue.StringList
	ProtocolNeeded bool
	JWT            jwtauth.Options
	JWTForward     flagvalue.StringList
	BackendTLS     tlsconf.ClientOptions
	ShutdownGrace  time.Duration
	ConfigFile     string
	ConfigDB       string
}

// backendFlags are the flags that describe backends; with -config or
// -config-db the backends come from there, so these are ignored (with a
// warning).
var backendFlags = []string{"balance", "subprotocol", "subprotocol-required", "pool-size", "pool-max", "release-policy", "reset-message", "reset-ack", "reset-quiet",
	"reset-timeout", "session-start", "session-header", "max-lifetime", "idle-timeout", "backend-ping-interval",
	"backend-pong-timeout", "dial-timeout"}

// Register defines every gateway flag on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	f.EndpointFlags.Register(fs)
	fs.Var(&f.Backends, "backend", "backend WebSocket URL ws://host:port/path or wss://host:port/path (repeatable)")
	fs.IntVar(&f.PoolSize, "pool-size", 10, "idle connections to keep ready per backend (pool target, min idle)")
	fs.StringVar(&f.Balance, "balance", "", "which backend a new session's connection comes from: least-leased (default: fewest sessions for its weight), random (by weight) or most-idle")
	fs.IntVar(&f.PoolMax, "pool-max", 0, "max connections per backend, all states; past it sessions wait, then get 1013 (default 0: no cap but the open-file limit)")
	fs.StringVar(&f.Policy, "release-policy", "", "what a backend connection does when its session ends: close (default: never reused, "+
		"so nothing a backend sends late reaches another session), reset (reset message and ack, or a quiet drain) or reuse "+
		"(only for backends that never send unprompted)")
	fs.StringVar(&f.ResetMessage, "reset-message", "", "policy reset: text message sent to the backend on release (empty: just drain)")
	fs.StringVar(&f.ResetAck, "reset-ack", "", "policy reset: the backend's text answer that ends the reset (empty: wait for -reset-quiet)")
	fs.DurationVar(&f.ResetQuiet, "reset-quiet", 0, "policy reset without ack: idle after this long without backend frames (default 100ms)")
	fs.DurationVar(&f.ResetTimeout, "reset-timeout", 0, "policy reset: close the connection if not done by then (default 5s)")
	fs.BoolVar(&f.SessionStart, "session-start", false, "send the backend a session_start JSON message before the client's first frame")
	fs.Var(&f.SessionHeaders, "session-header", "client request header copied into session_start (repeatable)")
	fs.DurationVar(&f.AcquireTimeout, "acquire-timeout", relay.DefaultAcquireTimeout, "wait this long for an idle backend connection before close 1013")
	fs.DurationVar(&f.MaxLifetime, "max-lifetime", 0, "retire backend connections after this, +-10% (default 1h)")
	fs.DurationVar(&f.IdleTimeout, "idle-timeout", 0, "close idle backend connections above pool-size unused this long (default 1m)")
	fs.DurationVar(&f.BackendPing, "backend-ping-interval", 0, "ping quiet backend connections this often (default 10s)")
	fs.DurationVar(&f.BackendPong, "backend-pong-timeout", 0, "close a backend connection whose ping is unanswered this long (default 5s)")
	fs.DurationVar(&f.DialTimeout, "dial-timeout", 0, "backend connect plus handshake timeout (default 5s)")
	fs.IntVar(&f.SocketBuffer, "backend-socket-buffer", reconcile.DefaultSocketBuffer, "send and receive buffer of each backend socket, bytes (the kernel doubles it); 0 = kernel autotuning")
	fs.BoolVar(&f.ProtocolNeeded, "subprotocol-required", false, "with -subprotocol: a client that offers none is refused (400) rather than served on the first")
	fs.Var(&f.AllowOrigins, "allow-origin", "web origin whose pages may open a session: https://app.example.com, or https://*.example.com for its subdomains (repeatable); "+
		"any other Origin, null included, gets 403; requests without Origin (not browsers) pass. Default: any origin")
	fs.StringVar(&f.JWT.KeyFile, "jwt-key", "", "require a JWT at the upgrade (Authorization: Bearer, or the access_token query parameter), verified with this key file: "+
		"a PEM public key (ES256 P-256, RS256) or certificate, or an HMAC secret (HS256, 32 bytes or more); a missing or bad token gets 401. Reloaded on SIGHUP")
	fs.StringVar(&f.JWT.Audience, "jwt-audience", "", "with -jwt-key: the aud the token must name")
	fs.StringVar(&f.JWT.Issuer, "jwt-issuer", "", "with -jwt-key: the iss the token must have")
	fs.DurationVar(&f.JWT.Leeway, "jwt-leeway", 0, "with -jwt-key: clock skew allowed on exp, nbf and iat (default 30s)")
	fs.Var(&f.JWTForward, "jwt-forward-claim", "with -jwt-key: a claim of the verified token copied into session_start's \"claims\" (repeatable; sub always goes as \"sub\")")
	fs.StringVar(&f.BackendTLS.CA, "backend-ca", "", "CA file, PEM, that wss:// backends' certificates are verified against (default: the system roots)")
	fs.StringVar(&f.BackendTLS.ServerName, "backend-server-name", "", "name wss:// backends' certificates are verified for (default: each backend URL's host)")
	fs.StringVar(&f.BackendTLS.CertFile, "backend-cert", "", "client certificate file, PEM, presented to wss:// backends (with -backend-key)")
	fs.StringVar(&f.BackendTLS.KeyFile, "backend-key", "", "client certificate's key file, PEM")
	fs.StringVar(&f.BackendTLS.MinVersion, "backend-tls-min-version", "1.2", "oldest TLS version spoken to wss:// backends: 1.2 or 1.3")
	fs.DurationVar(&f.ShutdownGrace, "shutdown-grace", 0, "on SIGTERM/SIGINT, let sessions end by themselves this long before close 1001")
	fs.StringVar(&f.ConfigFile, "config", "", "YAML configuration file (groups, backends, routes, limits); reloaded when it changes and on SIGHUP")
	fs.StringVar(&f.ConfigDB, "config-db", "", "PostgreSQL URL holding groups, backends and routes (create the schema with: wsgate migrate -config-db URL); changes apply live")
}

// ErrFlags wraps every refusal of a flag combination.
var ErrFlags = errors.New("gateway: bad flags")

// Options reads the parsed flags of fs (Register'ed on f) into Options.
// Warnings name flags the chosen source makes meaningless.
func (f *Flags) Options(fs *flag.FlagSet) (Options, []string, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	o := Options{AcquireTimeout: f.AcquireTimeout, ConfigFile: f.ConfigFile, ConfigDB: f.ConfigDB,
		BackendSocketBuffer: f.SocketBuffer}
	var err error
	if o.Server, o.ListenerTLS, err = f.ServerConfig(); err != nil {
		return o, nil, err
	}
	if o.BackendTLS, err = tlsconf.NewClient(f.BackendTLS); err != nil {
		return o, nil, fmt.Errorf("%w: %v", ErrFlags, err)
	}
	if f.JWT.KeyFile != "" {
		if o.JWT, err = jwtauth.New(f.JWT); err != nil {
			return o, nil, fmt.Errorf("%w: -jwt-key: %v", ErrFlags, err)
		}
		o.JWTForward = f.JWTForward
	} else if f.JWT.Audience != "" || f.JWT.Issuer != "" || len(f.JWTForward) > 0 {
		return o, nil, fmt.Errorf("%w: -jwt-audience, -jwt-issuer and -jwt-forward-claim need -jwt-key", ErrFlags)
	}
	if f.SocketBuffer == 0 {
		o.BackendSocketBuffer = -1 // autotuning
	}
	o.Server.ShutdownGrace = f.ShutdownGrace
	sources := 0
	for _, on := range []bool{len(f.Backends) > 0, f.ConfigFile != "", f.ConfigDB != ""} {
		if on {
			sources++
		}
	}
	if sources != 1 {
		return o, nil, fmt.Errorf("%w: give exactly one configuration source: -backend ws://host:port/path (repeatable), -config FILE or -config-db URL", ErrFlags)
	}
	var warnings []string
	if f.ConfigFile != "" || f.ConfigDB != "" {
		source := "-config"
		if f.ConfigDB != "" {
			source = "-config-db"
		}
		for _, name := range backendFlags {
			if set[name] {
				warnings = append(warnings, fmt.Sprintf("-%s ignored: with %s, backends are configured there", name, source))
			}
		}
		if set["allow-origin"] && f.ConfigFile != "" {
			warnings = append(warnings, "-allow-origin ignored: with -config, allow_origins is set in the file")
		}
	}
	o.AllowOrigins = f.AllowOrigins // with -config-db: where a route names none
	o.Server.Subprotocols = nil     // the relay chooses, with the backends (config: per group)
	switch {
	case f.ConfigFile != "":
		data, err := os.ReadFile(f.ConfigFile)
		if err != nil {
			return o, warnings, fmt.Errorf("%w: configuration file: %v", ErrFlags, err)
		}
		c, err := config.ParseYAML(data)
		if err != nil {
			return o, warnings, fmt.Errorf("%w: configuration file %s: %v", ErrFlags, f.ConfigFile, err)
		}
		o.Initial = c
		f.applyFileBase(&o, c, set)
	case len(f.Backends) > 0:
		o.Initial = f.flagConfig()
	}
	if o.Initial != nil {
		if _, err := config.Compile(o.Initial, "start"); err != nil {
			return o, warnings, err
		}
	}
	return o, warnings, nil
}

// flagConfig is the configuration the flags describe: one group, the
// default route, the -backend list.
func (f *Flags) flagConfig() *config.GatewayConfig {
	g := config.Group{Name: pool.DefaultGroup, Balance: f.Balance, Subprotocols: f.Subprotocols, SubprotocolRequired: f.ProtocolNeeded}
	for _, u := range f.Backends {
		g.Backends = append(g.Backends, config.BackendConfig{
			URL: u, PoolTarget: f.PoolSize, MaxConns: f.PoolMax, ReleasePolicy: f.Policy,
			ResetMessage: f.ResetMessage, ResetAck: f.ResetAck,
			ResetQuiet: f.ResetQuiet, ResetTimeout: f.ResetTimeout,
			SessionStart: f.SessionStart, SessionHeaders: f.SessionHeaders,
			MaxLifetime: f.MaxLifetime, IdleTimeout: f.IdleTimeout,
			PingInterval: f.BackendPing, PongTimeout: f.BackendPong,
			DialTimeout: f.DialTimeout,
		})
	}
	return &config.GatewayConfig{Listen: f.Server.Addr, Groups: []config.Group{g}, DefaultGroup: pool.DefaultGroup, AllowOrigins: f.AllowOrigins}
}

// applyFileBase lets a configuration file set the listener, limits and
// timeouts (flags given explicitly still win).
func (f *Flags) applyFileBase(o *Options, c *config.GatewayConfig, set map[string]bool) {
	cfg := &o.Server
	if c.Listen != "" && !set["listen"] {
		cfg.Addr = c.Listen
	}
	setInt := func(name string, dst *int, v int) {
		if v != 0 && !set[name] {
			*dst = v
		}
	}
	setInt("max-conns", &cfg.MaxConns, c.Limits.MaxConns)
	setInt("max-header-bytes", &cfg.MaxHeaderBytes, c.Limits.MaxHeaderBytes)
	setInt("flow-window", &cfg.FlowWindow, c.Limits.FlowWindow)
	if c.Limits.MaxFrameBytes != 0 && !set["max-frame-bytes"] {
		cfg.MaxFrameBytes = c.Limits.MaxFrameBytes
	}
	if c.Limits.MaxMessageBytes != 0 && !set["max-message-bytes"] {
		cfg.MaxMessageBytes = c.Limits.MaxMessageBytes
	}
	setDur := func(name string, dst *time.Duration, v time.Duration) {
		if v != 0 && !set[name] {
			*dst = v
		}
	}
	setDur("handshake-timeout", &cfg.HandshakeTimeout, c.Timeouts.Handshake)
	setDur("ping-interval", &cfg.PingInterval, c.Timeouts.PingInterval)
	setDur("pong-timeout", &cfg.PongTimeout, c.Timeouts.PongTimeout)
	setDur("close-timeout", &cfg.CloseTimeout, c.Timeouts.Close)
	setDur("acquire-timeout", &o.AcquireTimeout, c.Timeouts.Acquire)
	setDur("shutdown-grace", &cfg.ShutdownGrace, c.Timeouts.ShutdownGrace)
	setDur("stall-timeout", &cfg.StallTimeout, c.Timeouts.Stall)
}

// ParseArgs parses args exactly as the binary's gateway mode does (same
// flags, same defaults) into Options: what tests use to build a gateway.
func ParseArgs(args []string) (Options, []string, error) {
	fs := flag.NewFlagSet("wsgate", flag.ContinueOnError)
	var f Flags
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		return Options{}, nil, err
	}
	if fs.NArg() > 0 {
		return Options{}, nil, fmt.Errorf("%w: unexpected argument %q", ErrFlags, fs.Arg(0))
	}
	return f.Options(fs)
}
