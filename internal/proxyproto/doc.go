// Package proxyproto reads the PROXY protocol header (HAProxy's "The PROXY
// protocol, Versions 1 & 2") that a load balancer in front of the gateway
// writes ahead of a client's own bytes, so that the gateway learns the
// client's address rather than the load balancer's.
//
// It owns the wire format and nothing else: Parse reads a header from a
// byte slice (an event loop's inbound buffer, where the header may arrive
// in pieces), Read from a blocking reader without reading past it (the
// goroutine of a TLS handshake, before the ClientHello), and Trusted says
// which peers may send one. Whether a listener expects the header, and what is done with
// the address, belong to the caller. The spec's rule binds it: a listener
// configured for the header requires it on every connection and never
// guesses whether one is present, or any client could forge its address.
//
// Both versions are read: v1 (a text line: TCP4, TCP6, UNKNOWN) strictly
// as the spec writes it, v2 (binary) for IPv4 and IPv6 over TCP. What the
// spec lets a receiver accept without an address (v2 LOCAL, v1 UNKNOWN,
// v2 AF_UNSPEC, AF_UNIX and datagram families) is accepted as "keep the
// connection's own addresses" (Header.Local). v2 TLVs are checked for
// framing (and the CRC32C one, if present, verified), then skipped.
//
// Nothing here keeps state between calls: Parse and Read are safe for
// concurrent use, and a Trusted is read-only once built.
package proxyproto
