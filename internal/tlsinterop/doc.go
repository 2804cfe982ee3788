// Package tlsinterop holds acceptance tests of wsgate's TLS listener; it
// has only tests.
package tlsinterop
