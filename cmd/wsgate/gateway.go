package main

import (
	"context"
	"flag"
	"fmt"
	"os"
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
	f.ops.register(fs)
}

// settings builds one backend's settings from the flags.
func (f *gatewayFlags) settings(url string) (pool.Settings, error) {
	policy, err := pool.ParsePolicy(f.policy)
	if err != nil {
		return pool.Settings{}, err
	}
	return pool.Settings{
		URL: url, Target: f.poolSize, Max: f.poolMax, Policy: policy,
		ResetMessage: f.resetMessage, ResetAck: f.resetAck, ResetQuiet: f.resetQuiet, ResetTimeout: f.resetTimeout,
		SessionStart: f.sessionStart, SessionHeaders: f.sessionHeaders,
		MaxLifetime: f.maxLifetime, IdleTimeout: f.idleTimeout,
		PingInterval: f.backendPing, PongTimeout: f.backendPong, DialTimeout: f.dialTimeout,
	}.Normalize()
}

func runGateway(args []string) int {
	fs := flag.NewFlagSet("wsgate", flag.ContinueOnError)
	var f gatewayFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "wsgate: unexpected argument %q (modes: wsgate [flags], wsgate echo [flags])\n", fs.Arg(0))
		return 2
	}
	log, flush, err := newLogger(f.logFormat, f.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgate:", err)
		return 2
	}
	defer flush()
	if len(f.backends) == 0 {
		log.Error("no backend: give at least one -backend ws://host:port/path")
		return 2
	}
	var list []pool.Settings
	for _, u := range f.backends {
		st, err := f.settings(u)
		if err != nil {
			log.Error("bad backend", zap.Error(err))
			return 2
		}
		list = append(list, st)
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
	if err := p.SetBackends(list); err != nil {
		log.Error("bad backends", zap.Error(err))
		return 2
	}
	f.cfg.Pool = p
	f.cfg.Handler = &server.Proxy{AcquireTimeout: f.acquireTimeout}
	f.cfg.OnSessionEnd = f.ops.accessLog(log)
	srv, err := server.New(f.cfg)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return 2
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	rec := reconcile.Start(reconcile.Config{Pool: p, Logger: log.Named("reconcile")})
	stopOps, err := f.ops.start(opsDeps{server: srv, pool: p, log: log})
	if err != nil {
		log.Error("admin endpoint", zap.Error(err))
		rec.Stop()
		srv.Stop()
		return 1
	}
	defer stopOps()
	log.Info("gateway ready", zap.String("addr", srv.Addr()), zap.Strings("backends", f.backends),
		zap.Int("pool_size", f.poolSize))
	return waitForSignal(log, func(ctx context.Context) error {
		// Reconcile first: once the pool starts closing, no new dial may
		// race the engine's stop.
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
