package jwtauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// referenceVerifier restates Verify's rules the slow, obvious way, on
// encoding/json's decoder, strings.Split and math/big, so that fuzzing
// can hold the fast path to the same answers. It is not a second
// opinion on the rules, only on their implementation.
type referenceVerifier struct {
	alg      string
	ecdsa    *ecdsa.PublicKey
	rsa      *rsa.PublicKey
	secret   []byte
	audience string
	issuer   string
	leeway   time.Duration
	now      time.Time
}

// verify returns the Reason label Verify should give token ("" if it
// should accept it) and, for an accepted token, its claims.
func (r *referenceVerifier) verify(token string) (string, Claims) {
	if token == "" {
		return "missing", Claims{}
	}
	if len(token) > MaxTokenLen {
		return "malformed", Claims{}
	}
	for _, c := range token {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", c) {
			return "malformed", Claims{}
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "malformed", Claims{}
	}
	header, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return "malformed", Claims{}
	}
	if reason := r.checkHeader(header); reason != "" {
		return reason, Claims{}
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if len(parts[2]) != base64.RawURLEncoding.EncodedLen(r.sigLen()) {
		return "signature", Claims{}
	}
	if err != nil {
		return "malformed", Claims{}
	}
	if !r.signatureOK([]byte(parts[0]+"."+parts[1]), sig) {
		return "signature", Claims{}
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return "malformed", Claims{}
	}
	return r.checkClaims(payload)
}

func (r *referenceVerifier) sigLen() int {
	switch r.alg {
	case AlgES256:
		return 64
	case AlgRS256:
		return r.rsa.Size()
	}
	return 32
}

func (r *referenceVerifier) signatureOK(signed, sig []byte) bool {
	digest := sha256.Sum256(signed)
	switch r.alg {
	case AlgES256:
		return ecdsa.Verify(r.ecdsa, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case AlgRS256:
		return rsa.VerifyPKCS1v15(r.rsa, crypto.SHA256, digest[:], sig) == nil
	}
	mac := hmac.New(sha256.New, r.secret)
	mac.Write(signed)
	return hmac.Equal(mac.Sum(nil), sig)
}

// member is one name and value of a JSON object, in order.
type member struct {
	name  string
	value any // from a decoder with UseNumber
}

// objectMembers decodes a JSON object keeping its members' order and
// duplicates, which a map would lose.
func objectMembers(data []byte) ([]member, bool) {
	if !utf8.Valid(data) || !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		ms = append(ms, member{tok.(string), v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return ms, true
}

func (r *referenceVerifier) checkHeader(header []byte) string {
	ms, ok := objectMembers(header)
	if !ok {
		return "malformed"
	}
	var algSeen, algOK, typSeen, typOK, crit bool
	for _, m := range ms {
		switch m.name {
		case "alg":
			if algSeen {
				return "malformed"
			}
			algSeen = true
			s, isString := m.value.(string)
			if isString && s == "none" {
				return "algorithm"
			}
			algOK = isString && s == r.alg
		case "typ":
			if typSeen {
				return "malformed"
			}
			typSeen = true
			s, isString := m.value.(string)
			typOK = isString && (strings.EqualFold(s, "JWT") || strings.EqualFold(s, "application/jwt"))
		case "crit":
			crit = true
		}
	}
	switch {
	case !algSeen, !algOK:
		return "algorithm"
	case crit, typSeen && !typOK:
		return "malformed"
	}
	return ""
}

func (r *referenceVerifier) checkClaims(payload []byte) (string, Claims) {
	ms, ok := objectMembers(payload)
	if !ok {
		return "malformed", Claims{}
	}
	seen := map[string]bool{}
	dates := map[string]time.Time{}
	audOK, issOK := r.audience == "", r.issuer == ""
	var subject string
	for _, m := range ms {
		switch m.name {
		case "exp", "nbf", "iat", "aud", "iss", "sub":
		default:
			continue
		}
		if seen[m.name] {
			return "malformed", Claims{}
		}
		seen[m.name] = true
		switch m.name {
		case "exp", "nbf", "iat":
			n, isNumber := m.value.(json.Number)
			if !isNumber {
				return "malformed", Claims{}
			}
			t, ok := referenceNumericDate(string(n))
			if !ok {
				return "malformed", Claims{}
			}
			dates[m.name] = t
		case "aud":
			switch aud := m.value.(type) {
			case string:
				audOK = audOK || aud == r.audience
			case []any:
				for _, e := range aud {
					s, isString := e.(string)
					if !isString {
						return "malformed", Claims{}
					}
					audOK = audOK || s == r.audience
				}
			default:
				return "malformed", Claims{}
			}
		case "iss":
			s, isString := m.value.(string)
			if !isString {
				return "malformed", Claims{}
			}
			issOK = issOK || s == r.issuer
		case "sub":
			s, isString := m.value.(string)
			if !isString {
				return "malformed", Claims{}
			}
			subject = s
		}
	}
	exp, ok := dates["exp"]
	if !ok {
		return "malformed", Claims{}
	}
	if !r.now.Before(exp.Add(r.leeway)) {
		return "expired", Claims{}
	}
	if nbf, ok := dates["nbf"]; ok && r.now.Add(r.leeway).Before(nbf) {
		return "not_yet_valid", Claims{}
	}
	if iat, ok := dates["iat"]; ok && r.now.Add(r.leeway).Before(iat) {
		return "not_yet_valid", Claims{}
	}
	if !audOK {
		return "audience", Claims{}
	}
	if !issOK {
		return "issuer", Claims{}
	}
	return "", Claims{Subject: subject, Expires: exp, Raw: payload}
}

// referenceNumericDate reads a JSON number as seconds since 1970 within
// years 0001-9999, to the nanosecond float64 can hold.
func referenceNumericDate(n string) (time.Time, bool) {
	if i, err := strconv.ParseInt(n, 10, 64); err == nil {
		return time.Unix(i, 0), minNumericDate <= i && i <= maxNumericDate
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || f < minNumericDate || f > maxNumericDate {
		return time.Time{}, false
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64(math.Round((f-sec)*1e9))), true
}
