package config_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/wsgate/wsgate/config"
	"github.com/wsgate/wsgate/internal/testutil"
)

// testDB returns the test database URL, with the wsgate schema freshly
// created. The database is started by scripts/pg-up.sh (make test runs
// it); a test that cannot reach it fails: it must run, not skip.
func testDB(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	dbURL := os.Getenv("WSGATE_TEST_PG")
	if dbURL == "" {
		dbURL = "postgres://wsgate:wsgate@127.0.0.1:5432/wsgate_test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (run scripts/pg-up.sh; make test does)", dbURL, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, q := range []string{
		`DROP TABLE IF EXISTS wsgate_groups, wsgate_backends, wsgate_routes, wsgate_settings, wsgate_schema`,
		`DROP FUNCTION IF EXISTS wsgate_notify_config()`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := config.Migrate(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	if v, err := config.Migrate(ctx, dbURL); err != nil || v != config.SchemaVersion() {
		t.Fatalf("second migrate: %d %v", v, err)
	}
	return dbURL, conn
}

func exec(t *testing.T, conn *pgx.Conn, q string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func runDBSource(t *testing.T, f *fleet, dbURL string) (*config.DBSource, func()) {
	src := config.NewDBSource(dbURL, config.GatewayConfig{}, f.applier, zaptest.NewLogger(t))
	src.PollInterval = time.Hour // only notifications drive changes here
	return src, runSource(src.Run)
}

// TestDBSourceAppliesChangesLive: rows inserted, updated and deleted while
// sessions run; every change applies within a second of its commit
// (LISTEN/NOTIFY), pools follow within seconds, the per-backend bound holds
// throughout (the fleet's monitor), and the session on an unaffected
// backend keeps working.
func TestDBSourceAppliesChangesLive(t *testing.T) {
	dbURL, conn := testDB(t)
	f := startFleet(t, 3)
	defer f.stop()
	a, b, c := f.echoURL(0), f.echoURL(1), f.echoURL(2)
	exec(t, conn, `INSERT INTO wsgate_groups VALUES ('main')`)
	exec(t, conn, `INSERT INTO wsgate_backends (group_name, url, pool_target, max_conns) VALUES ('main', $1, 2, 20)`, a)
	exec(t, conn, `INSERT INTO wsgate_settings VALUES ('default_group', 'main')`)
	_, stop := runDBSource(t, f, dbURL)
	defer stop()
	testutil.WaitFor(t, 5*time.Second, "first version", func() bool { return f.applier.Status().Version == 1 })
	testutil.WaitFor(t, 5*time.Second, "A filled", func() bool { return f.backend(a).Idle.Load() == 2 })
	s := f.open("/")

	applied := func(what string, change func()) {
		t.Helper()
		v := f.applier.Status().Version
		change()
		took := testutil.WaitFor(t, 5*time.Second, what, func() bool { return f.applier.Status().Version > v })
		if took > time.Second {
			t.Errorf("%s applied %v after the commit, want within 1s", what, took)
		}
		s.check(t)
	}
	applied("insert backend B", func() {
		exec(t, conn, `INSERT INTO wsgate_backends (group_name, url, pool_target, max_conns) VALUES ('main', $1, 3, 20)`, b)
	})
	testutil.WaitFor(t, 5*time.Second, "B filled", func() bool { return f.backend(b).Idle.Load() == 3 })

	applied("raise A's target", func() { exec(t, conn, `UPDATE wsgate_backends SET pool_target = 5 WHERE url = $1`, a) })
	testutil.WaitFor(t, 5*time.Second, "A grown", func() bool { return f.backend(a).Idle.Load() == 5 })
	applied("lower B's max below its pool", func() {
		exec(t, conn, `UPDATE wsgate_backends SET pool_target = 1, max_conns = 1 WHERE url = $1`, b)
	})
	testutil.WaitFor(t, 5*time.Second, "B shrunk to its new max", func() bool { return f.backend(b).Total.Load() == 1 })

	applied("add a group, a backend and a route", func() {
		tx, err := conn.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{`INSERT INTO wsgate_groups VALUES ('tts')`,
			`INSERT INTO wsgate_routes (path, group_name) VALUES ('/tts/', 'tts')`} {
			if _, err := tx.Exec(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.Exec(context.Background(), `INSERT INTO wsgate_backends (group_name, url, pool_target) VALUES ('tts', $1, 1)`, c); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	testutil.WaitFor(t, 5*time.Second, "C filled", func() bool { return f.backend(c).Idle.Load() == 1 })
	tts := f.open("/tts/en")
	if f.backend(c).Leases.Load() != 1 {
		t.Fatalf("the /tts/ route did not lead to its group's backend")
	}

	applied("allow one origin on /tts/", func() {
		exec(t, conn, `UPDATE wsgate_routes SET allow_origins = '{https://app.example.com}' WHERE path = '/tts/'`)
	})
	if rt, _ := f.applier.Current().Routing.Lookup("/tts/en"); rt.Origins.Allows("https://evil.example") || !rt.Origins.Allows("https://app.example.com") {
		t.Fatalf("/tts/ origins from the database: %s", rt.Origins)
	}

	// A bad row is refused, the field named, and nothing changes.
	v := f.applier.Status().Version
	exec(t, conn, `INSERT INTO wsgate_routes (path, group_name) VALUES ('/asr/', 'asr')`)
	testutil.WaitFor(t, 5*time.Second, "bad version refused", func() bool { return strings.Contains(f.applier.Status().LastError, "routes[1].group") })
	if f.applier.Status().Version != v {
		t.Fatal("a bad version was applied")
	}
	// Deleting it brings back exactly the version in force: no new
	// version, but the error clears.
	exec(t, conn, `DELETE FROM wsgate_routes WHERE path = '/asr/'`)
	testutil.WaitFor(t, 5*time.Second, "error cleared", func() bool { return f.applier.Status().LastError == "" })

	applied("delete backend B", func() { exec(t, conn, `DELETE FROM wsgate_backends WHERE url = $1`, b) })
	// Its idle connections close, then it leaves the pool.
	testutil.WaitFor(t, 5*time.Second, "B gone", func() bool { return f.backend(b) == nil })

	// A changed URL is a removal plus an addition: the old connections go.
	applied("move C to another URL", func() { exec(t, conn, `UPDATE wsgate_backends SET url = $1 WHERE url = $2`, b, c) })
	tts.check(t) // the open session on the old URL continues until it ends
	testutil.WaitFor(t, 5*time.Second, "old C idle closed", func() bool { return f.backend(c) == nil || f.backend(c).Idle.Load() == 0 })

	// Every backend row deleted: refused, not applied as an empty
	// configuration; the sessions and pools stay as they were.
	v = f.applier.Status().Version
	exec(t, conn, `DELETE FROM wsgate_backends`)
	testutil.WaitFor(t, 5*time.Second, "the empty version refused", func() bool {
		return strings.Contains(f.applier.Status().LastError, "no backend in any group")
	})
	if f.applier.Status().Version != v || f.backend(a) == nil {
		t.Fatal("an empty configuration was applied")
	}

	s.check(t)
	if n := f.srv.Stats().Sessions.Load(); n != 2 {
		t.Fatalf("%d sessions open, want the 2 the test holds", n)
	}
}

// forwarder is a TCP relay to PostgreSQL that the test can cut and
// restore, to make the database go away and come back.
type forwarder struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newForwarder(t *testing.T, target string) *forwarder {
	f := &forwarder{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	return f
}

func (f *forwarder) serve(ln net.Listener) {
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			f.wg.Add(2)
			go func() { defer f.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer f.wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every relayed connection.
func (f *forwarder) cut() {
	f.mu.Lock()
	_ = f.ln.Close()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}

// restore listens again on the same address.
func (f *forwarder) restore() {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.serve(ln)
}

// TestDBSourceSurvivesTheDatabaseGoingAway: the database connection drops;
// the source reports it, keeps the last good version and the sessions,
// retries with backoff, and applies what changed meanwhile once it is back.
func TestDBSourceSurvivesTheDatabaseGoingAway(t *testing.T) {
	dbURL, conn := testDB(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	fwd := newForwarder(t, u.Host)
	defer fwd.cut()
	u.Host = fwd.addr
	f := startFleet(t, 2)
	defer f.stop()
	a, b := f.echoURL(0), f.echoURL(1)
	exec(t, conn, `INSERT INTO wsgate_groups VALUES ('main')`)
	exec(t, conn, `INSERT INTO wsgate_backends (group_name, url, pool_target) VALUES ('main', $1, 2)`, a)
	exec(t, conn, `INSERT INTO wsgate_settings VALUES ('default_group', 'main')`)
	src, stop := runDBSource(t, f, u.String())
	defer stop()
	testutil.WaitFor(t, 5*time.Second, "first version", func() bool { return f.applier.Status().Version == 1 && src.Status().Connected })
	testutil.WaitFor(t, 5*time.Second, "A filled", func() bool { return f.backend(a).Idle.Load() == 2 })
	s := f.open("/")

	fwd.cut()
	testutil.WaitFor(t, 10*time.Second, "the source notices", func() bool { return !src.Status().Connected && src.Status().LastError != "" })
	if !strings.Contains(f.applier.Status().LastError, "database unavailable") {
		t.Fatalf("health does not show the outage: %+v", f.applier.Status())
	}
	exec(t, conn, `INSERT INTO wsgate_backends (group_name, url, pool_target) VALUES ('main', $1, 1)`, b)
	s.check(t)
	if f.applier.Status().Version != 1 {
		t.Fatal("version changed while the database was away")
	}

	fwd.restore()
	testutil.WaitFor(t, 15*time.Second, "back and applied", func() bool {
		bb := f.backend(b)
		return src.Status().Connected && bb != nil && bb.Idle.Load() == 1 && f.applier.Status().LastError == ""
	})
	s.check(t)
}
