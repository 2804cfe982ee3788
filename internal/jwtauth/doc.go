// Package jwtauth verifies the bearer token a client presents when it asks
// to upgrade to a WebSocket, before the gateway leases a backend
// connection for it.
//
// It owns one thing: the verification key, loaded from one file (an ECDSA
// P-256 or RSA public key or certificate in PEM, or an HMAC secret) and
// swapped whole by Reload. It accepts compact JWS tokens signed with the
// one algorithm that key implies (ES256, RS256 or HS256) and checks the
// registered claims exp, nbf, iat, aud and iss. The token never chooses
// the key or the algorithm: kid, jku, jwk, x5u and x5c are ignored, and a
// token whose alg is not the key's is refused before any signature is
// checked.
//
// Who may call what: Verify and TokenFrom run on the event loops, several
// at once. They do not block and start no goroutine. Verify's working
// memory is pooled: it allocates the claims of an accepted token and
// nothing else, but crypto/ecdsa and crypto/rsa allocate about ten small
// objects per signature they check (HMAC none). A token refused before its
// signature is checked (malformed, wrong alg) costs no allocation at all.
// New and Reload read a file: call them off the loops (at startup, from
// the reload goroutine). A Verify running while Reload swaps the key
// finishes with the key it started with.
package jwtauth
