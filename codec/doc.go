// Package codec is RFC 6455 on bytes: the incremental HTTP upgrade parser and
// its responses (server side), the client handshake used to dial backends,
// WebSocket frame headers (gobwas/ws types), masking, close payloads and a
// streaming UTF-8 validator.
//
// Everything here is pure: no I/O, no goroutines, no gnet. Functions work on
// byte slices the caller owns and never keep a reference to them after they
// return, so the caller may parse straight out of a network buffer and
// discard what was consumed. Parsers given too few bytes report that they
// need more without consuming anything. Nothing in this package is safe for
// concurrent use unless its doc says so; stateless functions are.
package codec
