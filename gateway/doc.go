// Package gateway assembles wsgate's gateway from its rooms: the server
// (client sessions on the event loops), the pool (backend connections),
// the reconcile workers that keep the pools at target, and the
// configuration (package config): its applier with its source (flags, a
// YAML file or PostgreSQL).
//
// It owns the one path from command-line flags to a running gateway:
// Flags registers and reads the wsgate binary's flags, Options is what
// they describe, and New turns Options into a Gateway with every default
// applied in one place. The binary and the tests take this same path, so
// a test never runs a gateway the binary would not (the pool's frame
// limits, say, come from the server's effective limits, never from a
// flag's raw zero).
//
// Ownership: a Gateway is built and started by one goroutine (the main
// goroutine of cmd/wsgate, or a test); Start, Reload, Shutdown and Stop are
// safe for concurrent use afterwards. The parts it holds follow their own
// rules (see each package's doc).
package gateway
