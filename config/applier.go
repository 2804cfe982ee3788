package config

import (
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/relay"
)

// Applier installs configuration versions into the pool and the relay:
// each one is validated whole and swapped in atomically (backends, then
// routes); a rejected one changes nothing and the last good version stays.
// Apply is safe for concurrent use (sources take turns on a mutex: this
// is the configuration path, never the traffic path).
type Applier struct {
	pool   *pool.Pool
	routes Routes
	log    *zap.Logger

	mu      sync.Mutex // serialises Apply
	first   *Snapshot  // the version the process started with (listener, limits)
	current atomic.Pointer[Snapshot]
	version atomic.Int64

	lastAttempt atomic.Int64           // unix ns
	lastError   atomic.Pointer[string] // nil after a success
}

// Routes is where a version's routes go: the relay (relay.Proxy).
type Routes interface{ SetRouting(*relay.Routing) }

// NewApplier returns an applier for p's backends and routes' routes, with
// no version applied yet.
func NewApplier(p *pool.Pool, routes Routes, log *zap.Logger) *Applier {
	if log == nil {
		log = zap.NewNop()
	}
	return &Applier{pool: p, routes: routes, log: log}
}

// Current is the version in force, nil before the first. Safe for
// concurrent use.
func (a *Applier) Current() *Snapshot { return a.current.Load() }

// ConfigStatus is what the applier reports for health and metrics.
type ConfigStatus struct {
	Version     int64     // 0: nothing applied yet
	Source      string    // where the current version came from
	LastAttempt time.Time // last apply, good or bad
	LastError   string    // "" if the last apply succeeded
}

// Status reports the version in force and the last attempt. Safe for
// concurrent use.
func (a *Applier) Status() ConfigStatus {
	st := ConfigStatus{LastAttempt: time.Unix(0, a.lastAttempt.Load())}
	if s := a.current.Load(); s != nil {
		st.Version, st.Source = s.Version, s.Source
	}
	if e := a.lastError.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

// noteFailure records a reload that failed before a version could be
// compiled (a file that does not parse, a database that is away), so
// health and metrics show it; the version in force stays.
func (a *Applier) noteFailure(err error) {
	msg := err.Error()
	a.lastAttempt.Store(time.Now().UnixNano())
	a.lastError.Store(&msg)
}

// Apply validates c and, if it is good, makes it the version in force.
func (a *Applier) Apply(c *GatewayConfig, source string) (*Snapshot, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastAttempt.Store(time.Now().UnixNano())
	snap, err := Compile(c, source)
	if err == nil {
		err = a.install(snap)
	}
	if err != nil {
		msg := err.Error()
		a.lastError.Store(&msg)
		a.log.Warn("configuration rejected; the last good version stays",
			zap.String("source", source), zap.Int64("version_in_force", a.version.Load()), zap.Error(err))
		return nil, err
	}
	a.lastError.Store(nil)
	return snap, nil
}

func (a *Applier) install(snap *Snapshot) error {
	if cur := a.current.Load(); cur != nil && reflect.DeepEqual(cur.Config, snap.Config) {
		return nil // nothing changed (a poll, a touch of the file)
	}
	if err := a.pool.SetBackends(snap.Backends); err != nil {
		return err
	}
	snap.Version = a.version.Add(1)
	snap.Routing = relay.NewRouting(snap.Version, snap.Routing.Routes, snap.Routing.Default, snap.Routing.Origins, snap.Subprotocols)
	a.pool.SetBalancers(snap.Balancers)
	a.routes.SetRouting(snap.Routing)
	a.current.Store(snap)
	if a.first == nil {
		a.first = snap
	} else if !reflect.DeepEqual(a.first.Config.Limits, snap.Config.Limits) || !reflect.DeepEqual(a.first.Config.Timeouts, snap.Config.Timeouts) ||
		a.first.Config.Listen != snap.Config.Listen {
		a.log.Warn("listen, limits and timeouts changed: they take effect at the next restart", zap.Int64("version", snap.Version))
	}
	a.log.Info("configuration applied", zap.Int64("version", snap.Version), zap.String("source", snap.Source),
		zap.Int("backends", len(snap.Backends)), zap.Int("routes", len(snap.Routing.Routes)))
	return nil
}
