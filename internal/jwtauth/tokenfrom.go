package jwtauth

import (
	"net/url"
	"strings"
)

// QueryParam is the query parameter TokenFrom reads when the request has
// no bearer Authorization header (RFC 6750 section 2.3): browsers cannot
// set headers on a WebSocket handshake.
const QueryParam = "access_token"

// TokenFrom finds the token in an upgrade request: the credentials of an
// Authorization header value with the Bearer scheme (in any case, after
// one or more spaces), else the value of the first access_token parameter
// in rawQuery, percent-decoded as url.ParseQuery decodes it. A bearer
// header wins over the query. ok is false, and Verify should not be
// called, when neither holds a non-empty token; an Authorization header
// of another scheme counts as none. Allocates only to percent-decode a
// token that needs it. Safe for concurrent use.
func TokenFrom(authorization, rawQuery string) (token string, ok bool) {
	if token, ok := bearerToken(authorization); ok {
		return token, true
	}
	return queryToken(rawQuery)
}

// bearerToken reads "Bearer <token>" (RFC 6750 section 2.1), with the
// optional whitespace HTTP allows around a header value trimmed.
func bearerToken(authorization string) (string, bool) {
	const scheme = "Bearer"
	h := strings.Trim(authorization, " \t")
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' {
		return "", false
	}
	token := strings.TrimLeft(h[len(scheme):], " ")
	return token, token != ""
}

// queryToken finds access_token as url.ParseQuery(rawQuery).Get would,
// without building the map: pairs split on '&', a pair with a ';' skipped
// (ParseQuery refuses it), the first pair whose decoded name matches
// wins, a pair that does not percent-decode skipped.
func queryToken(rawQuery string) (string, bool) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		if !isQueryParam(name) {
			continue
		}
		token, err := url.QueryUnescape(value) // returns value itself when there is nothing to decode
		if err != nil {
			continue
		}
		return token, token != ""
	}
	return "", false
}

// isQueryParam says whether the raw, still-encoded name decodes to
// QueryParam.
func isQueryParam(name string) bool {
	if name == QueryParam {
		return true
	}
	if !strings.ContainsAny(name, "%+") || len(name) > 3*len(QueryParam) {
		return false // nothing to decode, or too long to decode to it
	}
	decoded, err := url.QueryUnescape(name)
	return err == nil && decoded == QueryParam
}

// StripToken is a query string without its access_token parameters: a
// token is the client's credential, not something for a backend or a log
// line. The other parameters keep their order.
func StripToken(query string) string {
	if !strings.Contains(query, QueryParam) && !strings.Contains(query, "%") {
		return query
	}
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		// Some parsers also split on ';': a token behind one goes too.
		var parts []string
		for _, part := range strings.Split(kv, ";") {
			name, _, _ := strings.Cut(part, "=")
			if decoded, err := url.QueryUnescape(name); err == nil {
				name = decoded // TokenFrom reads "acc%65ss_token" too
			}
			if name != QueryParam {
				parts = append(parts, part)
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, ";"))
		}
	}
	return strings.Join(kept, "&")
}
