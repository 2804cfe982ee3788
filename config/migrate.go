package config

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// NotifyChannel is the PostgreSQL channel the schema's triggers notify on
// every change to groups, backends, routes or settings.
const NotifyChannel = "wsgate_config"

// migrations are applied in order, each once, under an advisory lock so
// that a fleet of wsgate instances starting together migrate once. The
// tables hold what the configuration model holds for groups, backends
// and routes; they have few constraints on purpose: wsgate validates a
// whole version itself and keeps the last good one, naming the bad row.
var migrations = []string{`
CREATE TABLE wsgate_groups (
	name text PRIMARY KEY
);
CREATE TABLE wsgate_backends (
	id               bigserial PRIMARY KEY,
	group_name       text    NOT NULL,
	url              text    NOT NULL,
	pool_target      integer NOT NULL DEFAULT 10,
	max_conns        integer NOT NULL DEFAULT 0,
	weight           integer NOT NULL DEFAULT 1,
	release_policy   text    NOT NULL DEFAULT 'reuse',
	reset_message    text    NOT NULL DEFAULT '',
	reset_ack        text    NOT NULL DEFAULT '',
	reset_quiet_ms   integer NOT NULL DEFAULT 0,
	reset_timeout_ms integer NOT NULL DEFAULT 0,
	session_start    boolean NOT NULL DEFAULT false,
	session_headers  text[]  NOT NULL DEFAULT '{}',
	enabled          boolean NOT NULL DEFAULT true,
	draining         boolean NOT NULL DEFAULT false,
	drain_timeout_ms integer NOT NULL DEFAULT 0,
	max_lifetime_ms  integer NOT NULL DEFAULT 0
);
CREATE TABLE wsgate_routes (
	id         bigserial PRIMARY KEY,
	path       text    NOT NULL,
	exact      boolean NOT NULL DEFAULT false,
	group_name text    NOT NULL
);
CREATE TABLE wsgate_settings (
	key   text PRIMARY KEY,
	value text NOT NULL
);
CREATE FUNCTION wsgate_notify_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('` + NotifyChannel + `', TG_TABLE_NAME);
	RETURN NULL;
END $$;
CREATE TRIGGER wsgate_groups_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wsgate_groups
	FOR EACH STATEMENT EXECUTE FUNCTION wsgate_notify_config();
CREATE TRIGGER wsgate_backends_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wsgate_backends
	FOR EACH STATEMENT EXECUTE FUNCTION wsgate_notify_config();
CREATE TRIGGER wsgate_routes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wsgate_routes
	FOR EACH STATEMENT EXECUTE FUNCTION wsgate_notify_config();
CREATE TRIGGER wsgate_settings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wsgate_settings
	FOR EACH STATEMENT EXECUTE FUNCTION wsgate_notify_config();
`,
	// 2: a backend row without a release policy takes the gateway's
	// default (close: nothing a backend sends late reaches another
	// session). Rows written before kept the 'reuse' they were given.
	`ALTER TABLE wsgate_backends ALTER COLUMN release_policy SET DEFAULT '';
`,
	// 3: a group's balancing policy ('' is the default, least-leased).
	`ALTER TABLE wsgate_groups ADD COLUMN balance text NOT NULL DEFAULT '';
`,
	// 4: the web origins allowed on a route ('{}': the flags' list).
	`ALTER TABLE wsgate_routes ADD COLUMN allow_origins text[] NOT NULL DEFAULT '{}';
`,
	// 5: the subprotocols a group's backends speak, preference order, and
	// whether a client must offer one.
	`ALTER TABLE wsgate_groups ADD COLUMN subprotocols text[] NOT NULL DEFAULT '{}';
ALTER TABLE wsgate_groups ADD COLUMN subprotocol_required boolean NOT NULL DEFAULT false;
`}

// Migrate brings the database at url to the latest schema (`wsgate migrate`).
// It returns the schema version.
func Migrate(ctx context.Context, url string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("config: migrate: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("config: migrate: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit it is a no-op
	steps := []string{
		`SELECT pg_advisory_xact_lock(7215190004)`, // one migrator at a time
		`CREATE TABLE IF NOT EXISTS wsgate_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
	}
	for _, q := range steps {
		if _, err := tx.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("config: migrate: %w", err)
		}
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM wsgate_schema`).Scan(&have); err != nil {
		return 0, fmt.Errorf("config: migrate: %w", err)
	}
	for v := have + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return 0, fmt.Errorf("config: migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO wsgate_schema (version) VALUES ($1)`, v); err != nil {
			return 0, fmt.Errorf("config: migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("config: migrate: %w", err)
	}
	return len(migrations), nil
}

// SchemaVersion is the schema version Migrate brings a database to.
func SchemaVersion() int { return len(migrations) }
