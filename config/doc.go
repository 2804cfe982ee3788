// Package config owns wsgate's configuration: the model (GatewayConfig and
// its groups, backends, routes, limits and timeouts), its validation, and
// its sources with their watchers. Each version is compiled (Compile) into
// an immutable Snapshot in the form the pool and the relay take.
//
// Sources: the command-line flags (package gateway reads them into a
// GatewayConfig and applies it once), a YAML file (ParseYAML; FileSource
// polls it and reloads on request), and PostgreSQL (Migrate creates the
// schema; DBSource LISTENs for the schema's notifications and polls as a
// safety net). Signals are not handled here: cmd/wsgate turns SIGHUP into
// a Reload call.
//
// Who may call what:
//
//   - The Applier serialises versions. Apply is safe for concurrent use:
//     sources take turns on its mutex (the configuration path, never the
//     traffic path). Each version is validated whole; a good one is
//     numbered and installed: backends into the pool, then routes into the
//     relay (Routes: relay.Proxy); a bad one changes nothing and the last
//     good version stays in force.
//   - Each source runs on its own named goroutine (FileSource.Run,
//     DBSource.Run), started with a context by its owner (package gateway)
//     and ended by cancelling it; each recovers and logs a panic. Load may
//     be called by the owner before Run; Reload by anyone, at any time, and
//     never blocks (requests coalesce).
//   - Readers see whole snapshots: a Snapshot is never modified once Apply
//     returns it, the pool swaps each version's backends and the relay
//     its routes atomically, and Applier.Status (version in force, last attempt, last
//     error) is safe for concurrent use.
//
// Listener, limits and timeouts are read at start; a later version that
// changes them is logged and takes effect at the next restart. Groups,
// backends and routes apply live.
package config
