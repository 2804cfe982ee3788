package relay

import (
	"encoding/json"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/jwtauth"
	"github.com/wsgate/wsgate/internal/ratelog"
)

// Tokens at the upgrade: with a verifier set (RequireToken), a session
// opens only with a valid JWT, from "Authorization: Bearer" or the
// access_token query parameter, checked on the loop before any backend
// connection is leased (no goroutine; ES256 costs ~0.1 ms). A failure is
// answered 401 and counted by reason. The subject and chosen claims can
// travel in the session-start message; the token itself never reaches a
// backend (access_token is taken out of the query it is given).

// auth is the proxy's token check; nil: none.
type auth struct {
	verifier *jwtauth.Verifier
	forward  []string // claims copied into session_start (besides sub)
	log      *zap.Logger
	logLimit ratelog.Limiter
	failed   map[string]*atomic.Int64 // by jwtauth.Reason; fixed at RequireToken
}

// RequireToken makes every session present a token v accepts; forward
// names the claims (beyond sub) the session-start message carries. Call
// it before the server starts.
func (p *Proxy) RequireToken(v *jwtauth.Verifier, forward []string, log *zap.Logger) {
	a := &auth{verifier: v, forward: forward, log: log, failed: make(map[string]*atomic.Int64)}
	for _, r := range jwtauth.Reasons() {
		a.failed[r] = new(atomic.Int64)
	}
	p.auth = a
}

// AuthFailures returns the upgrades refused for a bad or missing token,
// by reason (jwtauth.Reasons); nil without a token check. Safe for
// concurrent use.
func (p *Proxy) AuthFailures() map[string]int64 {
	if p.auth == nil {
		return nil
	}
	out := make(map[string]int64, len(p.auth.failed))
	for r, n := range p.auth.failed {
		out[r] = n.Load()
	}
	return out
}

// unauthorized is the answer to a request without a valid token.
var unauthorized = &codec.HandshakeError{Status: 401, Reason: "a valid token is required",
	Header: "WWW-Authenticate: Bearer realm=\"wsgate\", error=\"invalid_token\"\r\n"}

// check verifies req's token. Loop-only (any loop).
func (a *auth) check(req *codec.UpgradeRequest) (jwtauth.Claims, error) {
	_, query, _ := strings.Cut(req.URI, "?")
	token, ok := jwtauth.TokenFrom(req.Get("Authorization"), query)
	var claims jwtauth.Claims
	err := jwtauth.ErrMissing
	if ok {
		claims, err = a.verifier.Verify(token)
	}
	if err != nil {
		reason := jwtauth.Reason(err)
		if n := a.failed[reason]; n != nil {
			n.Add(1)
		}
		a.logLimit.Log(a.log, zap.InfoLevel, "upgrade refused: token", zap.String("reason", reason), zap.Error(err))
		return claims, unauthorized
	}
	return claims, nil
}

// forwardedClaims is the JSON object of the claims to forward that the
// token has, nil if none.
func (a *auth) forwardedClaims(raw json.RawMessage) json.RawMessage {
	if a == nil || len(a.forward) == 0 {
		return nil
	}
	var all map[string]json.RawMessage
	if json.Unmarshal(raw, &all) != nil {
		return nil
	}
	picked := make(map[string]json.RawMessage, len(a.forward))
	for _, name := range a.forward {
		if v, ok := all[name]; ok {
			picked[name] = v
		}
	}
	if len(picked) == 0 {
		return nil
	}
	b, _ := json.Marshal(picked) // raw JSON values: cannot fail
	return b
}
