package main

import (
	"context"
	"flag"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/reconcile"
	"github.com/wsgate/wsgate/server"
)

// gatewayFlags are the gateway's own flags on top of the endpoint's.
type gatewayFlags struct {
	endpointFlags
	backends       stringList
	poolSize       int
	poolMax        int
	policy         string
	resetMessage   string
	resetAck       string
	resetQuiet     time.Duration
	resetTimeout   time.Duration
	sessionStart   bool
	sessionHeaders stringList
	acquireTimeout time.Duration
	maxLifetime    time.Duration
	idleTimeout    time.Duration
	backendPing    time.Duration
	backendPong    time.Duration
	dialTimeout    time.Duration
	shutdownGrace  time.Duration
	configFile     string
	configDB       string
	ops            opsFlags // admin endpoint and access log (ops.go)
}

func (f *gatewayFlags) register(fs *flag.FlagSet) {
	f.endpointFlags.register(fs)
	fs.Var(&f.backends, "backend", "backend WebSocket URL ws://host:port/path (repeatable)")
	fs.IntVar(&f.poolSize, "pool-size", 10, "idle connections to keep ready per backend (pool target, min idle)")
	fs.IntVar(&f.poolMax, "pool-max", 0, "max connections per backend, all states (default max(4 x pool-size, 1024))")
	fs.StringVar(&f.policy, "release-policy", "reuse", "what a backend connection does when its session ends: reuse, reset or close")
	fs.StringVar(&f.resetMessage, "reset-message", "", "policy reset: text message sent to the backend on release (empty: just drain)")
	fs.StringVar(&f.resetAck, "reset-ack", "", "policy reset: the backend's text answer that ends the reset (empty: wait for -reset-quiet)")
	fs.DurationVar(&f.resetQuiet, "reset-quiet", 0, "policy reset without ack: idle after this long without backend frames (default 100ms)")
	fs.DurationVar(&f.resetTimeout, "reset-timeout", 0, "policy reset: close the connection if not done by then (default 5s)")
	fs.BoolVar(&f.sessionStart, "session-start", false, "send the backend a session_start JSON message before the client's first frame")
	fs.Var(&f.sessionHeaders, "session-header", "client request header copied into session_start (repeatable)")
	fs.DurationVar(&f.acquireTimeout, "acquire-timeout", server.DefaultAcquireTimeout, "wait this long for an idle backend connection before close 1013")
	fs.DurationVar(&f.maxLifetime, "max-lifetime", 0, "retire backend connections after this, +-10% (default 1h)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 0, "close idle backend connections above pool-size unused this long (default 1m)")
	fs.DurationVar(&f.backendPing, "backend-ping-interval", 0, "ping quiet backend connections this often (default 10s)")
	fs.DurationVar(&f.backendPong, "backend-pong-timeout", 0, "close a backend connection whose ping is unanswered this long (default 5s)")
	fs.DurationVar(&f.dialTimeout, "dial-timeout", 0, "backend connect plus handshake timeout (default 5s)")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 0, "on SIGTERM/SIGINT, let sessions end by themselves this long before close 1001")
	fs.StringVar(&f.configFile, "config", "", "YAML configuration file (groups, backends, routes, limits); reloaded when it changes and on SIGHUP")
	fs.StringVar(&f.configDB, "config-db", "", "PostgreSQL URL holding groups, backends and routes (see `wsgate migrate`); changes apply live")
	f.ops.register(fs)
}

// flagConfig is the configuration the flags describe: one group, the
// default route, the -backend list.
func (f *gatewayFlags) flagConfig() (*reconcile.GatewayConfig, error) {
	policy := f.policy
	if _, err := pool.ParsePolicy(policy); err != nil {
		return nil, err
	}
	g := reconcile.Group{Name: pool.DefaultGroup}
	for _, u := range f.backends {
		g.Backends = append(g.Backends, reconcile.BackendConfig{
			URL: u, PoolTarget: f.poolSize, MaxConns: f.poolMax, ReleasePolicy: policy,
			ResetMessage: f.resetMessage, ResetAck: f.resetAck,
			ResetQuiet: reconcile.Duration(f.resetQuiet), ResetTimeout: reconcile.Duration(f.resetTimeout),
			SessionStart: f.sessionStart, SessionHeaders: f.sessionHeaders,
			MaxLifetime: reconcile.Duration(f.maxLifetime), IdleTimeout: reconcile.Duration(f.idleTimeout),
			PingInterval: reconcile.Duration(f.backendPing), PongTimeout: reconcile.Duration(f.backendPong),
			DialTimeout: reconcile.Duration(f.dialTimeout),
		})
	}
	return &reconcile.GatewayConfig{Listen: f.cfg.Addr, Groups: []reconcile.Group{g}, DefaultGroup: pool.DefaultGroup}, nil
}

// applyFileBase lets a configuration file set the listener, limits and
// timeouts (flags given explicitly still win).
func (f *gatewayFlags) applyFileBase(c *reconcile.GatewayConfig, set map[string]bool) {
	if c.Listen != "" && !set["listen"] {
		f.cfg.Addr = c.Listen
	}
	setInt := func(name string, dst *int, v int) {
		if v != 0 && !set[name] {
			*dst = v
		}
	}
	setInt("max-conns", &f.cfg.MaxConns, c.Limits.MaxConns)
	setInt("max-header-bytes", &f.cfg.MaxHeaderBytes, c.Limits.MaxHeaderBytes)
	setInt("write-buffer-limit", &f.cfg.WriteBufferLimit, c.Limits.WriteBufferLimit)
	if c.Limits.MaxFrameBytes != 0 && !set["max-frame-bytes"] {
		f.cfg.MaxFrameBytes = c.Limits.MaxFrameBytes
	}
	if c.Limits.MaxMessageBytes != 0 && !set["max-message-bytes"] {
		f.cfg.MaxMessageBytes = c.Limits.MaxMessageBytes
	}
	setDur := func(name string, dst *time.Duration, v reconcile.Duration) {
		if v != 0 && !set[name] {
			*dst = time.Duration(v)
		}
	}
	setDur("handshake-timeout", &f.cfg.HandshakeTimeout, c.Timeouts.Handshake)
	setDur("ping-interval", &f.cfg.PingInterval, c.Timeouts.PingInterval)
	setDur("pong-timeout", &f.cfg.PongTimeout, c.Timeouts.PongTimeout)
	setDur("close-timeout", &f.cfg.CloseTimeout, c.Timeouts.Close)
	setDur("acquire-timeout", &f.acquireTimeout, c.Timeouts.Acquire)
	setDur("shutdown-grace", &f.shutdownGrace, c.Timeouts.ShutdownGrace)
}

func runGateway(args []string) int {
	fs := flag.NewFlagSet("wsgate", flag.ContinueOnError)
	var f gatewayFlags
	f.register(fs)
	log, flush, code := parseFlags(fs, args, &f.endpointFlags)
	if code != 0 {
		return code
	}
	defer flush()
	if err := f.ops.check(); err != nil { // before anything listens
		log.Error("bad flags", zap.Error(err))
		return 2
	}
	var err error
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	sources := 0
	for _, on := range []bool{len(f.backends) > 0, f.configFile != "", f.configDB != ""} {
		if on {
			sources++
		}
	}
	if sources != 1 {
		log.Error("give exactly one configuration source: -backend ws://host:port/path (repeatable), -config FILE or -config-db URL")
		return 2
	}
	var initial *reconcile.GatewayConfig
	switch {
	case f.configFile != "":
		data, err := os.ReadFile(f.configFile)
		if err == nil {
			initial, err = reconcile.ParseYAML(data)
		}
		if err != nil {
			log.Error("configuration file", zap.String("path", f.configFile), zap.Error(err))
			return 2
		}
		f.applyFileBase(initial, set)
		for _, name := range []string{"pool-size", "pool-max", "release-policy", "reset-message", "reset-ack", "reset-quiet",
			"reset-timeout", "session-start", "session-header", "max-lifetime", "idle-timeout", "backend-ping-interval",
			"backend-pong-timeout", "dial-timeout"} {
			if set[name] {
				log.Warn("backend flag ignored: with -config, backends are configured in the file", zap.String("flag", "-"+name))
			}
		}
	case len(f.backends) > 0:
		if initial, err = f.flagConfig(); err != nil {
			log.Error("bad flags", zap.Error(err))
			return 2
		}
	}
	if initial != nil {
		if _, err := reconcile.Compile(initial, "start"); err != nil {
			log.Error("bad configuration", zap.Error(err))
			return 2
		}
	}
	f.cfg.Subprotocols = f.subprotocols
	f.cfg.Logger = log
	f.cfg.ShutdownGrace = f.shutdownGrace
	if f.cfg.Loops == 0 {
		f.cfg.Loops = defaultLoops()
	}
	p := pool.New(pool.Config{
		Shards: f.cfg.Loops, MaxFrameBytes: f.cfg.MaxFrameBytes, MaxMessageBytes: maxMessage(f.cfg),
		WriteBufferLimit: f.cfg.WriteBufferLimit, Logger: log.Named("pool"),
	})
	applier := reconcile.NewApplier(p, log.Named("config"))
	switch {
	case f.configFile != "":
		if _, err := applier.Apply(initial, "file:"+f.configFile); err != nil {
			return 2
		}
	case initial != nil:
		if _, err := applier.Apply(initial, "flags"); err != nil {
			return 2
		}
	}
	f.cfg.Pool = p
	f.cfg.Handler = &server.Proxy{AcquireTimeout: f.acquireTimeout}
	f.cfg.OnSessionEnd = f.ops.accessLog(log)
	srv, code := startServer(f.cfg, log)
	if code != 0 {
		return code
	}
	rec := reconcile.Start(reconcile.Config{Pool: p, Logger: log.Named("reconcile")})
	ctx, stopSources := context.WithCancel(context.Background())
	var sourcesDone sync.WaitGroup
	defer sourcesDone.Wait()
	defer stopSources()
	var reload func() // nil with flags only: POST /actions/reload answers 501
	switch {
	case f.configFile != "":
		src := reconcile.NewFileSource(f.configFile, applier, log.Named("config"))
		reload = src.Reload
		sourcesDone.Add(1)
		go func() { defer sourcesDone.Done(); src.Run(ctx) }()
	case f.configDB != "":
		base := reconcile.GatewayConfig{Listen: f.cfg.Addr} // the rest comes from the database
		src := reconcile.NewDBSource(f.configDB, base, applier, log.Named("config"))
		reload = src.Reload
		sourcesDone.Add(1)
		go func() { defer sourcesDone.Done(); src.Run(ctx) }()
	}
	onHUP := reload
	if onHUP == nil {
		onHUP = func() { log.Info("SIGHUP: the configuration comes from flags; nothing to reload") }
	}
	watchHUP := reconcile.WatchSIGHUP(onHUP)
	sourcesDone.Add(1)
	go func() { defer sourcesDone.Done(); watchHUP(ctx) }()
	stopOps, err := f.ops.start(opsDeps{server: srv, pool: p, log: log, config: applier, reload: reload})
	if err != nil {
		log.Error("admin endpoint", zap.Error(err))
		rec.Stop()
		srv.Stop()
		return 1
	}
	defer stopOps()
	log.Info("gateway ready", zap.String("addr", srv.Addr()), zap.Int64("config_version", applier.Status().Version))
	return waitForSignal(log, func(ctx context.Context) error {
		// Configuration sources first (no version may land mid-shutdown),
		// then reconcile (once the pool starts closing, no new dial may
		// race the engine's stop), then the server.
		stopSources()
		sourcesDone.Wait()
		rec.Stop()
		return srv.Shutdown(ctx)
	}, f.shutdownTimeout+f.shutdownGrace)
}

func maxMessage(c server.Config) int64 {
	if c.MaxMessageBytes > 0 {
		return c.MaxMessageBytes
	}
	return server.DefaultMaxMessageBytes
}
