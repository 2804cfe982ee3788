package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/buildinfo"
	"github.com/wsgate/wsgate/internal/sdnotify"
)

// gatewayFlags are the gateway mode's flags: the gateway's own (package
// gateway, shared with the tests) and the operating ones (ops.go).
type gatewayFlags struct {
	gateway.Flags
	ops opsFlags // admin endpoint and access log
}

func (f *gatewayFlags) register(fs *flag.FlagSet) {
	f.Flags.Register(fs)
	f.ops.register(fs)
}

func runGateway(args []string) int {
	fs := flag.NewFlagSet("wsgate", flag.ContinueOnError)
	var f gatewayFlags
	f.register(fs)
	fs.Usage = usage(fs, "wsgate [flags]: the gateway")
	log, sink, flush, code := parseFlags(fs, args, &f.EndpointFlags)
	if log == nil {
		return code
	}
	defer flush()
	if err := f.ops.check(); err != nil { // before anything listens
		log.Error("bad flags", zap.Error(err))
		return 2
	}
	opts, warnings, err := f.Options(fs)
	for _, w := range warnings {
		log.Warn("flag ignored", zap.String("why", w))
	}
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return 2
	}
	opts.Logger = log
	gw, err := gateway.New(opts)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return 2
	}
	gw.SetSessionEnd(f.ops.accessLog(log))
	if err := gw.Start(); err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	ctx, stopWatch := context.WithCancel(context.Background())
	var watching sync.WaitGroup
	hup := watchSIGHUP(reloadOnHUP(gw), log)
	watching.Add(1)
	go hup.run(ctx, &watching)
	defer func() { stopWatch(); watching.Wait() }()
	var reload func() error
	if gw.CanReload() {
		reload = gw.Reload
	}
	stopOps, err := f.ops.start(opsDeps{server: gw.Server, pool: gw.Pool, listenerTLS: gw.ListenerTLS(), proxy: gw.Proxy, jwt: gw.JWT(), log: log, applier: gw.Applier, reload: reload,
		configSource: gw.HasConfigSource(),
		logDropped:   sink.Dropped})
	if err != nil {
		log.Error("admin endpoint", zap.Error(err))
		gw.Stop()
		return 1
	}
	defer stopOps()
	if v := gw.Applier.Status().Version; v > 0 {
		log.Info("gateway ready", zap.String("addr", gw.Server.Addr()), zap.String("tls_addr", gw.Server.TLSAddr()),
			zap.Int64("config_version", v), zap.Stringer("build", buildinfo.Get()))
	} else {
		log.Info("gateway listening; sessions get 503 until the first configuration is loaded from the database",
			zap.String("addr", gw.Server.Addr()), zap.String("tls_addr", gw.Server.TLSAddr()), zap.Stringer("build", buildinfo.Get()))
	}
	watching.Add(1)
	go func() {
		defer watching.Done()
		notifyReady(ctx, gw, log)
	}()
	return waitForSignal(log, gw.Done(), gw.Err, func(ctx context.Context) error {
		err := gw.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			return nil
		}
		return err
	}, f.ShutdownTimeout+f.ShutdownGrace)
}

// reloadOnHUP is what a SIGHUP does: reload the certificates and the
// configuration source; false when there is neither.
func reloadOnHUP(gw *gateway.Gateway) func() bool {
	return func() bool {
		if !gw.CanReload() {
			return false
		}
		_ = gw.Reload() // a failure is logged and counted
		return true
	}
}

// readyWait bounds how long READY=1 waits for the pools to fill.
const readyWait = 10 * time.Second

// notifyReady tells systemd (Type=notify) the gateway serves: once a
// configuration is in force and every reachable backend's pool stands at
// its target, or readyWait after start, whichever comes first (a backend
// that is down must not keep the unit starting). Without NOTIFY_SOCKET
// it does nothing.
func notifyReady(ctx context.Context, gw *gateway.Gateway, log *zap.Logger) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	deadline := time.Now().Add(readyWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !poolsReady(gw) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	status := fmt.Sprintf("serving on %s, configuration version %d", gw.Server.Addr(), gw.Applier.Status().Version)
	if _, err := sdnotify.Notify(sdnotify.Ready + "\n" + sdnotify.Status(status)); err != nil {
		log.Warn("could not tell systemd the gateway is ready", zap.Error(err))
	}
}

// poolsReady: a configuration is in force and every healthy backend that
// takes leases has its target of idle connections.
func poolsReady(gw *gateway.Gateway) bool {
	if gw.Applier.Status().Version == 0 {
		return false
	}
	for _, b := range gw.Pool.Backends() {
		if b.TakesLeases() && b.Healthy() && b.Idle.Load() < int64(b.Settings().Target) {
			return false
		}
	}
	return true
}
