package main

import (
	"context"
	"errors"
	"flag"
	"sync"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/buildinfo"
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
	stopOps, err := f.ops.start(opsDeps{server: gw.Server, pool: gw.Pool, listenerTLS: gw.ListenerTLS(), log: log, applier: gw.Applier, reload: reload,
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
