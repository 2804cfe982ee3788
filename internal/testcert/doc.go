// Package testcert makes throwaway certificate authorities and the
// certificates they sign, for tests and the demo (cmd/devcert): never for
// production. It owns nothing but the keys it returns.
package testcert
