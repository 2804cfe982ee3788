package main

import (
	"flag"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// opsFlags are the operating flags: the admin endpoint and the access log.
type opsFlags struct {
	admin string // admin listen address, "" = off
}

func (o *opsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.admin, "admin", "", "admin address for /debug/pprof/ (loopback recommended), empty = off")
}

// opsDeps is what the operating side reads and steers.
type opsDeps struct {
	server *server.Server
	pool   *pool.Pool
	log    *zap.Logger
}

// accessLog returns the session-end hook, or nil when access logs are off.
func (o *opsFlags) accessLog(*zap.Logger) func(*server.SessionRecord) { return nil }

// start serves the admin endpoint if configured; stop ends it.
func (o *opsFlags) start(d opsDeps) (stop func(), err error) {
	if o.admin == "" {
		return func() {}, nil
	}
	return serveAdmin(o.admin, d.log)
}

// serveAdmin serves the profiling endpoints on addr.
func serveAdmin(addr string, log *zap.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Warn("admin endpoint stopped", zap.Error(err))
		}
	}()
	log.Info("admin endpoint", zap.String("addr", ln.Addr().String()))
	return func() { _ = hs.Close() }, nil
}
