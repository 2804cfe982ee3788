package config

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/backoff"
	"github.com/wsgate/wsgate/internal/jitter"
)

// querier is a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// LoadDB reads the configuration's groups, backends, routes and default
// group from the database. Listener, limits, timeouts and the allowed
// origins where a route names none are not in the database: they come
// from base (the flags).
func LoadDB(ctx context.Context, conn querier, base GatewayConfig) (*GatewayConfig, error) {
	c := base
	c.Groups, c.Routes, c.DefaultGroup = nil, nil, ""
	index := make(map[string]int)
	rows, err := conn.Query(ctx, `SELECT name, balance, subprotocols, subprotocol_required FROM wsgate_groups ORDER BY name`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		g := Group{}
		if err := rows.Scan(&g.Name, &g.Balance, &g.Subprotocols, &g.SubprotocolRequired); err != nil {
			return nil, err
		}
		if len(g.Subprotocols) == 0 {
			g.Subprotocols = nil
		}
		index[g.Name] = len(c.Groups)
		c.Groups = append(c.Groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `SELECT id, group_name, url, pool_target, max_conns, weight, release_policy, reset_message,
		reset_ack, reset_quiet_ms, reset_timeout_ms, session_start, session_headers, enabled, draining, drain_timeout_ms,
		max_lifetime_ms FROM wsgate_backends ORDER BY id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var (
			id                              int64
			group                           string
			b                               BackendConfig
			quiet, timeout, drain, lifetime int64
			enabled                         bool
		)
		if err := rows.Scan(&id, &group, &b.URL, &b.PoolTarget, &b.MaxConns, &b.Weight, &b.ReleasePolicy, &b.ResetMessage,
			&b.ResetAck, &quiet, &timeout, &b.SessionStart, &b.SessionHeaders, &enabled, &b.Draining, &drain, &lifetime); err != nil {
			return nil, err
		}
		gi, ok := index[group]
		if !ok {
			rows.Close()
			return nil, fmt.Errorf("%w: wsgate_backends[id=%d].group_name = %q: no such group", ErrInvalid, id, group)
		}
		ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
		b.ResetQuiet, b.ResetTimeout, b.DrainTimeout, b.MaxLifetime = ms(quiet), ms(timeout), ms(drain), ms(lifetime)
		b.Enabled = &enabled
		c.Groups[gi].Backends = append(c.Groups[gi].Backends, b)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `SELECT path, exact, group_name, allow_origins FROM wsgate_routes ORDER BY id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r RouteConfig
		if err := rows.Scan(&r.Path, &r.Exact, &r.Group, &r.AllowOrigins); err != nil {
			return nil, err
		}
		c.Routes = append(c.Routes, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = conn.QueryRow(ctx, `SELECT value FROM wsgate_settings WHERE key = 'default_group'`).Scan(&c.DefaultGroup)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	return &c, nil
}

// DBSource keeps the configuration in step with PostgreSQL: LISTEN for the
// triggers' notifications (a change applies within a second), a jittered
// periodic reload as a safety net for a missed notification, and on any
// database error, reconnection with exponential backoff and jitter while
// the last good version stays in force.
type DBSource struct {
	URL          string
	Base         GatewayConfig // listener, limits, timeouts (from flags)
	Applier      *Applier
	PollInterval time.Duration // safety-net reload, +-10% (default 10 s)
	Log          *zap.Logger

	connected atomic.Bool
	lastError atomic.Pointer[string]
	reload    chan struct{}
}

// NewDBSource returns a source for the database at url.
func NewDBSource(url string, base GatewayConfig, a *Applier, log *zap.Logger) *DBSource {
	if log == nil {
		log = zap.NewNop()
	}
	return &DBSource{URL: url, Base: base, Applier: a, Log: log, reload: make(chan struct{}, 1)}
}

// DBStatus is the database source's health.
type DBStatus struct {
	Connected bool
	LastError string
}

// Status reports whether the source is connected and its last error.
// Safe for concurrent use.
func (d *DBSource) Status() DBStatus {
	st := DBStatus{Connected: d.connected.Load()}
	if e := d.lastError.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

// Reload asks Run to read the database now (SIGHUP, admin). Never blocks.
func (d *DBSource) Reload() {
	select {
	case d.reload <- struct{}{}:
	default:
	}
}

// Run is the database source's goroutine, until ctx ends.
func (d *DBSource) Run(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			d.Log.Error("configuration database watcher panicked; database changes are no longer applied", zap.Any("panic", r))
		}
	}()
	retry := backoff.Backoff{Base: 100 * time.Millisecond, Cap: 30 * time.Second, Jitter: 0.2}
	for ctx.Err() == nil {
		connected, err := d.session(ctx)
		d.connected.Store(false)
		if connected {
			retry.Reset() // a new outage starts from the bottom
		}
		if ctx.Err() != nil {
			return
		}
		msg := err.Error()
		d.lastError.Store(&msg)
		// Health and metrics show it; the next good load clears it.
		d.Applier.noteFailure(fmt.Errorf("config: database unavailable: %w", err))
		wait := retry.Next()
		d.Log.Warn("configuration database unavailable; keeping the last good version",
			zap.Error(err), zap.Duration("retry_in", wait), zap.Int64("version_in_force", d.Applier.Status().Version))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// session is one connection's life: listen, load, then reload on every
// notification, reload request or poll tick, until an error. connected
// says whether it got as far as listening.
func (d *DBSource) session(ctx context.Context) (connected bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(cctx, d.URL)
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return false, err
	}
	d.connected.Store(true)
	d.lastError.Store(nil)
	for {
		if err := d.load(ctx, conn); err != nil && !errors.Is(err, ErrInvalid) {
			return true, err
		}
		interval := d.PollInterval
		if interval <= 0 {
			interval = 10 * time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, jitter.Scale(interval, 0.1))
		go d.endWaitOnReload(wctx, cancel)
		_, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err != nil && !timedOut:
			return true, err
		}
		// A transaction over several tables notifies once per table: let
		// the burst settle into one load.
		for {
			nctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			_, err := conn.WaitForNotification(nctx)
			cancel()
			if err != nil {
				break
			}
		}
	}
}

// endWaitOnReload is a goroutine of session, one per wait for a
// notification, which it outlives by nothing: it cancels the wait (ctx)
// when a reload is requested, and ends with the wait.
func (d *DBSource) endWaitOnReload(ctx context.Context, cancel context.CancelFunc) {
	defer func() {
		if r := recover(); r != nil {
			d.Log.Error("reload watcher panicked", zap.Any("panic", r))
		}
	}()
	select {
	case <-d.reload:
		cancel()
	case <-ctx.Done():
	}
}

func (d *DBSource) load(ctx context.Context, conn *pgx.Conn) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// One snapshot of all four tables, never half of a commit.
	tx, err := conn.BeginTx(lctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read-only
	c, err := LoadDB(lctx, tx, d.Base)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			d.Applier.noteFailure(err)
			d.Log.Warn("configuration rejected; the last good version stays", zap.String("source", "postgres"), zap.Error(err))
		}
		return err
	}
	_, err = d.Applier.Apply(c, "postgres")
	return err
}
