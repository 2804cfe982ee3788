package config

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/pool"
)

// Applier installs configuration versions into the pool: each one is
// validated whole and swapped in atomically (backends, then routes); a
// rejected one changes nothing and the last good version stays.
// Apply is safe for concurrent use (sources take turns on a mutex: this
// is the configuration path, never the traffic path).
type Applier struct {
	pool *pool.Pool
	log  *zap.Logger

	mu      sync.Mutex // serialises Apply
	first   *Snapshot  // the version the process started with (listener, limits)
	current atomic.Pointer[Snapshot]
	version atomic.Int64

	lastAttempt atomic.Int64           // unix ns
	lastError   atomic.Pointer[string] // nil after a success
}

// NewApplier returns an applier for p with no version applied yet.
func NewApplier(p *pool.Pool, log *zap.Logger) *Applier {
	if log == nil {
		log = zap.NewNop()
	}
	return &Applier{pool: p, log: log}
}

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
	snap.Routing = pool.NewRouting(snap.Version, snap.Routing.Routes, snap.Routing.Default)
	a.pool.SetRouting(snap.Routing)
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

// FileSource reads a YAML configuration file and reapplies it when it
// changes (checked every PollInterval) or when Reload is called (SIGHUP).
type FileSource struct {
	Path         string
	Applier      *Applier
	PollInterval time.Duration // default 250 ms
	// Settle is how long a changed file must stay unchanged before it is
	// read, so a file being written is not read half-way (default 50 ms;
	// an atomic rename is still the safe way to replace it).
	Settle time.Duration
	Log    *zap.Logger

	reload chan struct{} // size 1: reload requests coalesce
	seen   atomic.Pointer[fileStamp]
}

// NewFileSource returns a source for the file at path.
func NewFileSource(path string, a *Applier, log *zap.Logger) *FileSource {
	if log == nil {
		log = zap.NewNop()
	}
	return &FileSource{Path: path, Applier: a, Log: log, reload: make(chan struct{}, 1)}
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// Load reads and applies the file once. A file that changes while it is
// read is not applied (the next poll reads it again).
func (f *FileSource) Load() error {
	before, err := stampOf(f.Path)
	var data []byte
	if err == nil {
		data, err = os.ReadFile(f.Path)
	}
	if err != nil {
		err = fmt.Errorf("config: file: %w", err)
		f.Applier.noteFailure(err)
		f.Log.Warn("configuration file unreadable; the last good version stays", zap.String("path", f.Path), zap.Error(err))
		return err
	}
	if after, err := stampOf(f.Path); err != nil || after != before {
		return fmt.Errorf("config: file %s changed while read", f.Path)
	}
	f.seen.Store(&before)
	c, err := ParseYAML(data)
	if err != nil {
		f.Applier.noteFailure(err)
		f.Log.Warn("configuration file rejected; the last good version stays", zap.String("path", f.Path), zap.Error(err))
		return err
	}
	_, err = f.Applier.Apply(c, "file:"+f.Path)
	return err
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// Reload asks Run to read the file now (SIGHUP). Never blocks.
func (f *FileSource) Reload() {
	select {
	case f.reload <- struct{}{}:
	default:
	}
}

// Run watches the file until ctx ends. It is the named goroutine of the
// file source. A change is applied once the file has stayed the same for
// Settle: a file rewritten every 200 ms still applies within a poll or
// two, where waiting for a whole unchanged poll applied nothing.
func (f *FileSource) Run(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			f.Log.Error("config file watcher panicked; the file is no longer watched", zap.Any("panic", r))
		}
	}()
	interval := f.PollInterval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	settle := f.Settle
	if settle <= 0 {
		settle = 50 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	missing := false // reported once per disappearance
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.reload:
			f.Log.Info("reloading configuration", zap.String("path", f.Path))
			_ = f.Load()
		case <-t.C:
			st, err := stampOf(f.Path)
			if err != nil {
				if !missing {
					f.Applier.noteFailure(fmt.Errorf("config: file: %w", err))
					f.Log.Warn("configuration file missing; the last good version stays", zap.String("path", f.Path), zap.Error(err))
				}
				missing = true
				continue
			}
			missing = false
			if old := f.seen.Load(); old != nil && *old == st {
				continue
			}
			select { // let the writer finish
			case <-ctx.Done():
				return
			case <-time.After(settle):
			}
			if again, err := stampOf(f.Path); err != nil || again != st {
				continue // still being written: the next poll looks again
			}
			_ = f.Load()
		}
	}
}
