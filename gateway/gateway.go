package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/config"
	"github.com/wsgate/wsgate/internal/jwtauth"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/reconcile"
	"github.com/wsgate/wsgate/relay"
	"github.com/wsgate/wsgate/server"
)

// Options is what a gateway is built from; Flags.Options reads it from the
// command line. Zero values take the defaults of the parts (server,
// pool, reconcile, config).
type Options struct {
	// Server is the client side: listener, loops, limits (which apply to
	// backend frames too), timers. Its Pool and Handler are set by New.
	Server server.Config
	// AcquireTimeout bounds a new session's wait for a backend connection.
	AcquireTimeout time.Duration
	// Initial is the configuration to start with (from flags or the file);
	// nil with ConfigDB, whose first load brings it.
	Initial *config.GatewayConfig
	// ConfigFile or ConfigDB, if set, is the live configuration source.
	ConfigFile, ConfigDB string
	// FilePollInterval is how often the ConfigFile source looks for a
	// change (default 250 ms; SIGHUP and Reload read the file at once).
	FilePollInterval time.Duration
	// ReconcileInterval is the reconcile workers' safety-net tick (default 5 s).
	ReconcileInterval time.Duration
	// BackendSocketBuffer is a backend socket's send and receive buffer
	// (default reconcile.DefaultSocketBuffer; negative: kernel autotuning).
	BackendSocketBuffer int
	// ListenerTLS, if set, holds the TLS listener's certificates
	// (Server.TLS is its configuration): the gateway reloads them when
	// their files change and on Reload.
	ListenerTLS *tlsconf.Server
	// CertWatchInterval is how often ListenerTLS's files are looked at
	// (default tlsconf.DefaultWatchInterval).
	CertWatchInterval time.Duration
	// AllowOrigins, with ConfigDB, are the origins allowed where a route
	// names none (the database holds per-route lists only).
	AllowOrigins []string
	// JWT, if set, is required of every session at the upgrade (401
	// otherwise); JWTForward names the claims session_start carries
	// besides sub. Reload reads its key again.
	JWT        *jwtauth.Verifier
	JWTForward []string
	// BackendTLS is the configuration wss:// backends are dialed with
	// (default: verified against the system roots).
	BackendTLS *tlsconf.Client
	// Logger receives everything (default: none).
	Logger *zap.Logger
}

// Gateway is the assembled gateway. Safe for concurrent use once built.
type Gateway struct {
	Server  *server.Server
	Pool    *pool.Pool
	Proxy   *relay.Proxy
	Applier *config.Applier

	opts    Options
	log     *zap.Logger
	rec     *reconcile.Reconciler
	reload  func() // asks the configuration source to reload; nil with flags
	sources struct {
		cancel context.CancelFunc
		wg     sync.WaitGroup
	}
	stopOnce sync.Once
}

// New builds a gateway from o, not yet listening: the pool (its frame and
// message limits are the server's effective ones, so backends get the
// same limits as clients whatever the flags said), the applier with the
// initial configuration applied, and the server.
func New(o Options) (*Gateway, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	cfg := o.Server
	cfg.Logger = o.Logger
	if cfg.Loops == 0 {
		cfg.Loops = server.DefaultLoops()
	}
	limits, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	p := pool.New(pool.Config{
		Shards: cfg.Loops, MaxFrameBytes: limits.MaxFrameBytes, MaxMessageBytes: limits.MaxMessageBytes,
		QueueLimit: limits.FlowWindow,
	})
	g := &Gateway{Pool: p, opts: o, log: o.Logger}
	proxy := relay.New(p, o.AcquireTimeout)
	if o.JWT != nil {
		proxy.RequireToken(o.JWT, o.JWTForward, o.Logger.Named("auth"))
	}
	g.Proxy = proxy
	g.Applier = config.NewApplier(p, proxy, o.Logger.Named("config"))
	if o.Initial != nil {
		source := "flags"
		if o.ConfigFile != "" {
			source = "file:" + o.ConfigFile
		}
		if _, err := g.Applier.Apply(o.Initial, source); err != nil {
			return nil, err
		}
	}
	Wire(&cfg, p, proxy)
	if g.Server, err = server.New(cfg); err != nil {
		return nil, err
	}
	return g, nil
}

// Wire makes cfg the server of a gateway in front of p: sessions are
// relayed to p's backends by proxy, each shard's pool attaches to its
// event loop when the server creates it, and closes its backend
// connections at shutdown.
func Wire(cfg *server.Config, p *pool.Pool, proxy *relay.Proxy) {
	cfg.Gateway = true
	cfg.Handler = proxy
	cfg.OnShard = func(sh *server.Shard) { p.Shard(sh.Index()).Attach(sh) }
	cfg.OnShutdown = func(sh *server.Shard) { p.Shard(sh.Index()).CloseAll() }
}

// SetSessionEnd installs the hook that gets a record of every session that
// ended (the access log, the admin recorder). Call it before Start.
func (g *Gateway) SetSessionEnd(fn func(*server.SessionRecord)) { g.Server.SetSessionEnd(fn) }

// Start listens, starts the reconcile workers and the configuration
// source. On error nothing is left running.
func (g *Gateway) Start() error {
	if err := g.Server.Start(); err != nil {
		return err
	}
	g.rec = reconcile.Start(reconcile.Config{Pool: g.Pool, Logger: g.log.Named("reconcile"), Interval: g.opts.ReconcileInterval,
		SocketBuffer: g.opts.BackendSocketBuffer, TLS: g.opts.BackendTLS})
	ctx, cancel := context.WithCancel(context.Background())
	g.sources.cancel = cancel
	if certs := g.opts.ListenerTLS; certs != nil {
		g.runSource(ctx, func(ctx context.Context) { certs.Watch(ctx, g.opts.CertWatchInterval, g.log.Named("tls")) })
	}
	switch {
	case g.opts.ConfigFile != "":
		src := config.NewFileSource(g.opts.ConfigFile, g.Applier, g.log.Named("config"))
		src.PollInterval = g.opts.FilePollInterval
		g.reload = src.Reload
		g.runSource(ctx, src.Run)
	case g.opts.ConfigDB != "":
		base := config.GatewayConfig{Listen: g.Server.Addr(), AllowOrigins: g.opts.AllowOrigins} // the rest comes from the database
		src := config.NewDBSource(g.opts.ConfigDB, base, g.Applier, g.log.Named("config"))
		g.reload = src.Reload
		g.runSource(ctx, src.Run)
	}
	return nil
}

func (g *Gateway) runSource(ctx context.Context, run func(context.Context)) {
	g.sources.wg.Add(1)
	go func() {
		defer g.sources.wg.Done()
		run(ctx)
	}()
}

// Reload reads the TLS certificates and the JWT key again, if any, and
// asks the configuration source to read its configuration now (a SIGHUP,
// the admin's reload action). The error is the certificates' and the
// key's (the configuration's own result comes later: see Applier.Status).
func (g *Gateway) Reload() error {
	var errs []error
	if g.opts.ListenerTLS != nil {
		errs = append(errs, g.opts.ListenerTLS.ReloadAndLog(g.log.Named("tls"), "reload asked"))
	}
	if v := g.opts.JWT; v != nil {
		if err := v.Reload(); err != nil {
			g.log.Warn("JWT key not reloaded; the previous one stays in force", zap.Error(err))
			errs = append(errs, err)
		} else {
			g.log.Info("JWT key reloaded", zap.String("algorithm", v.Algorithm()))
		}
	}
	if g.reload != nil {
		g.reload()
	}
	return errors.Join(errs...)
}

// HasConfigSource reports whether the configuration comes from a source
// Reload reads again (a file or the database), not from flags.
func (g *Gateway) HasConfigSource() bool { return g.reload != nil }

// CanReload reports whether Reload has something to read again.
func (g *Gateway) CanReload() bool {
	return g.reload != nil || g.opts.ListenerTLS != nil || g.opts.JWT != nil
}

// JWT is the token verifier, nil without -jwt-key.
func (g *Gateway) JWT() *jwtauth.Verifier { return g.opts.JWT }

// ListenerTLS is the TLS listener's certificates, nil without one.
func (g *Gateway) ListenerTLS() *tlsconf.Server { return g.opts.ListenerTLS }

// Done is closed when the server has ended (after Stop, or by itself: see
// Err).
func (g *Gateway) Done() <-chan struct{} { return g.Server.Done() }

// Err is why the gateway failed, nil while it is healthy.
func (g *Gateway) Err() error { return g.Server.Err() }

// Shutdown stops the configuration source first (no version may land
// mid-shutdown), then reconcile (once the pool starts closing, no new dial
// may race the engine's stop), then the server, gracefully: see
// server.Server.Shutdown.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopParts()
	return g.Server.Shutdown(ctx)
}

// Stop ends everything at once.
func (g *Gateway) Stop() {
	g.stopParts()
	g.Server.Stop()
}

func (g *Gateway) stopParts() {
	g.stopOnce.Do(func() {
		if g.sources.cancel != nil {
			g.sources.cancel()
		}
		g.sources.wg.Wait()
		if g.rec != nil {
			g.rec.Stop()
		}
	})
}

// ErrNotStarted is returned by calls that need a started gateway.
var ErrNotStarted = errors.New("gateway: not started")

// String names the gateway for logs: its address and configuration version.
func (g *Gateway) String() string {
	return fmt.Sprintf("gateway %s (config version %d)", g.Server.Addr(), g.Applier.Status().Version)
}
