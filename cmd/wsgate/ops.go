package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/admin"
	"github.com/wsgate/wsgate/config"
	"github.com/wsgate/wsgate/internal/jwtauth"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/relay"
	"github.com/wsgate/wsgate/server"
)

// opsFlags are the operating flags: the admin endpoint and the access log.
type opsFlags struct {
	admin         string // admin listen address, "" = off; a host-less ":PORT" binds loopback
	adminToken    string // bearer token for actions (and off-loopback views); required off loopback
	mutexFraction int    // runtime.SetMutexProfileFraction, 0 = off
	blockRate     int    // runtime.SetBlockProfileRate in ns, 0 = off
	accessLogOn   bool   // one line per session
	accessSample  int    // log 1 session in N (abnormal ends always)

	recorder *admin.Recorder  // session-end counters, set by accessLog when -admin is on
	access   *admin.AccessLog // set by accessLog when -access-log is on
}

func (o *opsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.admin, "admin", "", "admin endpoint address (/metrics, /pools, /readyz, /debug/pprof/, actions, status page at /); "+
		"\":PORT\" binds 127.0.0.1; a non-loopback address needs -admin-token; empty = off")
	fs.StringVar(&o.adminToken, "admin-token", "", "bearer token the admin actions require (and views from off loopback); needed to bind -admin off loopback")
	fs.IntVar(&o.mutexFraction, "admin-mutex-profile-fraction", 0, "with -admin: report 1/N of mutex contention events in /debug/pprof/mutex (0 = off)")
	fs.IntVar(&o.blockRate, "admin-block-profile-rate", 0, "with -admin: sample one blocking event per N ns in /debug/pprof/block (0 = off)")
	fs.BoolVar(&o.accessLogOn, "access-log", false, "log one structured line per session (client, path, backend, duration, frames, bytes, close codes, reason)")
	fs.IntVar(&o.accessSample, "access-log-sample", 1, "with -access-log: log 1 session in N; sessions that end abnormally are always logged")
}

// opsDeps is what the operating side reads and steers.
type opsDeps struct {
	server      *server.Server
	pool        *pool.Pool
	listenerTLS *tlsconf.Server   // nil without a TLS listener
	proxy       *relay.Proxy      // the relay: token refusals
	jwt         *jwtauth.Verifier // nil without -jwt-key
	log         *zap.Logger
	// applier, if set, reports the configuration version in force and the
	// last reload's result; without it the version is the pool routing's.
	applier *config.Applier
	// reload, if set, reads the TLS certificates again and asks the
	// configuration source (file or database) to reload now; nil when
	// there is neither.
	reload func() error // the error is the certificates'
	// configSource: the configuration comes from a file or the database,
	// whose reload ends asynchronously (the applier says when).
	configSource bool
	// logDropped, if set, counts log lines dropped because stderr did not
	// take them in time.
	logDropped func() int64
}

// accessLog returns the session-end hook, or nil when neither the access
// log nor the admin endpoint (whose session metrics it feeds) is on. It
// runs on the event loops and never blocks: atomic counters, a lock-free
// histogram, and access lines through the process logger's buffered core.
func (o *opsFlags) accessLog(log *zap.Logger) func(*server.SessionRecord) {
	if o.admin != "" {
		o.recorder = admin.NewRecorder()
	}
	if o.accessLogOn {
		o.access = admin.NewAccessLog(log, o.accessSample)
	}
	return admin.Hook(o.recorder, o.access)
}

// check refuses flag combinations that cannot work. The gateway calls it
// right after parsing, before anything listens; start checks again for
// callers that go straight to it.
func (o *opsFlags) check() error {
	if o.accessSample < 1 {
		return fmt.Errorf("-access-log-sample must be at least 1 (got %d)", o.accessSample)
	}
	if o.mutexFraction < 0 || o.blockRate < 0 {
		return fmt.Errorf("-admin-mutex-profile-fraction and -admin-block-profile-rate must not be negative")
	}
	return nil
}

// start serves the admin endpoint if configured; stop ends it.
func (o *opsFlags) start(d opsDeps) (stop func(), err error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.admin == "" {
		return func() {}, nil
	}
	ep, err := admin.Listen(o.admin, admin.Options{
		Server: d.server, Pool: d.pool, ListenerTLS: d.listenerTLS, Proxy: d.proxy, JWT: d.jwt, Recorder: o.recorder, AccessLog: o.access,
		Logger: d.log.Named("admin"), Token: o.adminToken,
		MutexProfileFraction: o.mutexFraction, BlockProfileRate: o.blockRate,
		ConfigStatus: configStatus(d), Reload: reloadNow(d), LogDropped: d.logDropped,
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = ep.Close() }, nil
}

// configStatus reports the configuration for /metrics, /pools and /readyz:
// the applier's version and last result; without an applier, nil (the
// admin reports version 1, as from flags).
func configStatus(d opsDeps) func() admin.ConfigStatus {
	if a := d.applier; a != nil {
		return func() admin.ConfigStatus {
			st := a.Status()
			out := admin.ConfigStatus{Version: uint64(max(st.Version, 0)), Source: st.Source, LastReload: admin.ReloadOK}
			if st.LastError != "" {
				out.LastReload = st.LastError
			}
			if st.LastAttempt.UnixNano() > 0 {
				out.LastReloadAt = st.LastAttempt
			}
			return out
		}
	}
	return nil
}

// reloadWait bounds how long POST /actions/reload waits for the source to
// report; past it the answer is 202 (requested, result not known yet).
const reloadWait = 5 * time.Second

// reloadNow turns the source's asynchronous reload request into the
// admin action: ask, then wait until the applier records an attempt or
// a different error, and report it. nil (the action answers 501) when
// there is no source to reload.
func reloadNow(d opsDeps) func(context.Context) error {
	if d.reload == nil {
		return nil
	}
	return func(ctx context.Context) error {
		if !d.configSource {
			return d.reload() // the certificates alone: done on return
		}
		if d.applier == nil {
			if err := d.reload(); err != nil {
				return err
			}
			return admin.ErrReloadPending
		}
		before := d.applier.Status()
		if err := d.reload(); err != nil {
			return err // the certificates failed (the configuration reloads anyway)
		}
		ctx, cancel := context.WithTimeout(ctx, reloadWait)
		defer cancel()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			st := d.applier.Status()
			if st.LastAttempt.After(before.LastAttempt) || st.LastError != before.LastError {
				if st.LastError != "" {
					return errors.New(st.LastError)
				}
				return nil
			}
			select {
			case <-ctx.Done():
				return admin.ErrReloadPending
			case <-tick.C:
			}
		}
	}
}
