// Package backoff spaces retries after failures: the delay starts at a
// base, doubles with each failure in a row up to a cap, and is jittered so
// that retries started together do not stay in step; a success starts the
// schedule again from the base.
//
// A Backoff is safe for concurrent use: its state is two atomics, so it
// can sit in a struct read by anyone (a backend's health) as well as in
// one goroutine's loop (a source's reconnects). Its schedule (Base, Cap,
// Jitter) is set before first use and not changed after.
package backoff
