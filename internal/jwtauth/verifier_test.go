package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestVerifyAcceptsEachAlgorithm(t *testing.T) {
	keys(t)
	for _, k := range []testKey{esTest, rsTest, hsTest} {
		t.Run(k.alg, func(t *testing.T) {
			v := newVerifier(t, k)
			if v.Algorithm() != k.alg {
				t.Fatalf("Algorithm() = %q, want %q", v.Algorithm(), k.alg)
			}
			tok := token(hdr(k.alg), good(), k.sign)
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "user-42" {
				t.Errorf("Subject = %q", c.Subject)
			}
			if !c.Expires.Equal(testNow.Add(time.Hour)) {
				t.Errorf("Expires = %v", c.Expires)
			}
			var raw map[string]any
			if err := json.Unmarshal(c.Raw, &raw); err != nil || raw["sub"] != "user-42" {
				t.Errorf("Raw = %s (%v)", c.Raw, err)
			}
		})
	}
}

// TestVerifyRFC7515A1 checks the HS256 example of RFC 7515 appendix A.1,
// signed by someone else: its header has CRLF and no alg first, its
// payload a private claim with a URL for a name.
func TestVerifyRFC7515A1(t *testing.T) {
	secret, err := b64.DecodeString("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
	if err != nil {
		t.Fatal(err)
	}
	const tok = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
		".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	v, err := New(Options{
		KeyFile: writeKey(t, t.TempDir(), "secret", secret),
		Issuer:  "joe",
		Now:     func() time.Time { return time.Unix(1300819380, 0).Add(-time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Expires.Unix() != 1300819380 || !bytes.Contains(c.Raw, []byte(`"http://example.com/is_root":true`)) {
		t.Errorf("claims %+v %s", c, c.Raw)
	}
	v.now = func() time.Time { return time.Unix(1300819380, 0).Add(DefaultLeeway) }
	if _, err := v.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("at exp+leeway: %v", err)
	}
}

// TestVerifyRefuses holds one case per way a token can be wrong, each
// with the reason the gateway's metric will carry.
func TestVerifyRefuses(t *testing.T) {
	keys(t)
	es, rs, hs := esTest.sign, rsTest.sign, hsTest.sign
	goodES := token(hdr(AlgES256), good(), es)
	parts := strings.Split(goodES, ".")
	noneHeader := b64url([]byte(`{"alg":"none","typ":"JWT"}`))
	hugeClaims := with(map[string]any{"pad": strings.Repeat("x", MaxTokenLen)})

	// The RSA public key file, as an attacker who knows it would use it
	// for an HMAC secret, with and without its trailing newline.
	confusion := token(hdr(AlgHS256), good(), signHS256(rsaPublicPEMFile))
	confusionTrimmed := token(hdr(AlgHS256), good(), signHS256(bytes.TrimSuffix(rsaPublicPEMFile, []byte("\n"))))

	// ES256 signed right, then re-encoded as ASN.1 DER (as crypto/ecdsa's
	// SignASN1 and many HSMs produce): 70 to 72 bytes, not 64.
	digestInput := parts[0] + "." + parts[1]
	digest := sha256.Sum256([]byte(digestInput))
	asn1Sig, err := ecdsa.SignASN1(rand.Reader, esKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	esASN1 := digestInput + "." + b64url(asn1Sig)

	cases := []struct {
		name   string
		key    testKey
		token  string
		reason string
	}{
		{"empty", esTest, "", "missing"},
		{"one segment", esTest, parts[0], "malformed"},
		{"two segments", esTest, parts[0] + "." + parts[1], "malformed"},
		{"four segments", esTest, goodES + "." + parts[2], "malformed"},
		{"JWE-like five segments", esTest, goodES + ".a.b", "malformed"},
		{"trailing dot", esTest, goodES + ".", "malformed"},
		{"padding", esTest, parts[0] + "=." + parts[1] + "." + parts[2], "malformed"},
		{"standard base64 alphabet", esTest, strings.NewReplacer("-", "+", "_", "/").Replace(goodES) + "+/", "malformed"},
		{"newline inside", esTest, parts[0] + "\n." + parts[1] + "." + parts[2], "malformed"},
		{"space before", esTest, " " + goodES, "malformed"},
		{"non-canonical base64 signature", esTest, parts[0] + "." + parts[1] + "." + nonCanonical(parts[2]), "malformed"},
		{"header length 1 mod 4", esTest, "eyJhb." + parts[1] + "." + parts[2], "malformed"},
		{"header not JSON", esTest, b64url([]byte("alg=ES256")) + "." + parts[1] + "." + parts[2], "malformed"},
		{"header JSON array", esTest, b64url([]byte(`["alg","ES256"]`)) + "." + parts[1] + "." + parts[2], "malformed"},
		{"header truncated JSON", esTest, b64url([]byte(`{"alg":"ES256"`)) + "." + parts[1] + "." + parts[2], "malformed"},
		{"header not UTF-8", esTest, token([]byte("{\"alg\":\"ES256\",\"x\":\"\xff\"}"), good(), es), "malformed"},
		{"too long", esTest, token(hdr(AlgES256), hugeClaims, es), "malformed"},
		{"typ other", esTest, token(map[string]any{"alg": AlgES256, "typ": "dpop+jwt"}, good(), es), "malformed"}, // a client's DPoP proof is no access token
		{"typ JWS", esTest, token(map[string]any{"alg": AlgES256, "typ": "JOSE"}, good(), es), "malformed"},
		{"typ not a string", esTest, token(map[string]any{"alg": AlgES256, "typ": 1}, good(), es), "malformed"},
		{"crit", esTest, token(map[string]any{"alg": AlgES256, "crit": []string{"exp"}, "exp": 1}, good(), es), "malformed"},
		{"crit b64 false (RFC 7797)", esTest, token(map[string]any{"alg": AlgES256, "crit": []string{"b64"}, "b64": false}, good(), es), "malformed"},
		{"alg twice", esTest, token(`{"alg":"ES256","alg":"none"}`, good(), es), "malformed"},
		{"alg twice, escaped", esTest, token(`{"alg":"ES256","\u0061lg":"ES256"}`, good(), es), "malformed"},

		{"alg none, no signature", esTest, noneHeader + "." + parts[1] + ".", "algorithm"},
		{"alg none, with signature", esTest, noneHeader + "." + parts[1] + "." + parts[2], "algorithm"},
		{"alg None", esTest, token(hdr("None"), good(), es), "algorithm"},
		{"alg NONE on HMAC", hsTest, token(hdr("NONE"), good(), hs), "algorithm"},
		{"alg missing", esTest, token(map[string]any{"typ": "JWT"}, good(), es), "algorithm"},
		{"alg null", esTest, token(`{"alg":null}`, good(), es), "algorithm"},
		{"alg empty", esTest, token(hdr(""), good(), es), "algorithm"},
		{"alg lower case", esTest, token(hdr("es256"), good(), es), "algorithm"},
		{"alg ES384", esTest, token(hdr("ES384"), good(), es), "algorithm"},
		{"alg RS256 on EC key", esTest, token(hdr(AlgRS256), good(), rs), "algorithm"},
		{"alg PS256 on RSA key", rsTest, token(hdr("PS256"), good(), rs), "algorithm"},
		{"alg ES256 on HMAC key", hsTest, token(hdr(AlgES256), good(), es), "algorithm"},
		{"key confusion: HS256 with the RSA key PEM as secret", rsTest, confusion, "algorithm"},
		{"key confusion, trimmed PEM", rsTest, confusionTrimmed, "algorithm"},
		{"key confusion on EC key", esTest, token(hdr(AlgHS256), good(), signHS256(esPublicPEM)), "algorithm"},

		{"wrong EC key", esTest, token(hdr(AlgES256), good(), esTest2.sign), "signature"},
		{"wrong RSA key", rsTest, token(hdr(AlgRS256), good(), rsTest2.sign), "signature"},
		{"wrong HMAC secret", hsTest, token(hdr(AlgHS256), good(), hsTest2.sign), "signature"},
		{"ES256 signature as ASN.1 DER", esTest, esASN1, "signature"},
		{"ES256 signature truncated", esTest, parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4], "signature"},
		{"ES256 empty signature", esTest, parts[0] + "." + parts[1] + ".", "signature"},
		{"ES256 zero signature", esTest, parts[0] + "." + parts[1] + "." + b64url(make([]byte, 64)), "signature"},
		{"ES256 R=N", esTest, parts[0] + "." + parts[1] + "." + b64url(rsToJWS(elliptic.P256().Params().N, big.NewInt(1))), "signature"},
		{"payload changed", esTest, parts[0] + "." + b64url(mustJSON(with(map[string]any{"sub": "admin"}))) + "." + parts[2], "signature"},
		{"header changed", esTest, b64url([]byte(`{"alg":"ES256"}`)) + "." + parts[1] + "." + parts[2], "signature"},
		{"RSA signature one byte short", rsTest, rsShort(t), "signature"},
		{"HMAC signature one bit off", hsTest, flipLastBit(token(hdr(AlgHS256), good(), hs)), "signature"},

		{"payload not JSON", esTest, token(hdr(AlgES256), "exp=1", es), "malformed"},
		{"payload JSON string", esTest, token(hdr(AlgES256), `"exp"`, es), "malformed"},
		{"payload empty", esTest, token(hdr(AlgES256), "", es), "malformed"},
		{"payload not UTF-8", esTest, token(hdr(AlgES256), "{\"exp\":9999999999,\"x\":\"\xc3\"}", es), "malformed"},
		{"exp missing", esTest, token(hdr(AlgES256), with(map[string]any{"exp": nil}), es), "malformed"},
		{"exp string", esTest, token(hdr(AlgES256), with(map[string]any{"exp": "1700003600"}), es), "malformed"},
		{"exp null", esTest, token(hdr(AlgES256), with(map[string]any{"exp": json.RawMessage("null")}), es), "malformed"},
		{"exp beyond year 9999", esTest, token(hdr(AlgES256), with(map[string]any{"exp": json.RawMessage("1e300")}), es), "malformed"},
		{"exp huge integer", esTest, token(hdr(AlgES256), with(map[string]any{"exp": json.RawMessage("99999999999999999999999")}), es), "malformed"},
		{"exp twice", esTest, token(hdr(AlgES256), `{"exp":1,"exp":9999999999,"aud":"wsgate","iss":"https://issuer.test"}`, es), "malformed"},
		{"exp twice, escaped", esTest, token(hdr(AlgES256), `{"exp":9999999999,"\u0065xp":1,"aud":"wsgate","iss":"https://issuer.test"}`, es), "malformed"},
		{"sub twice", esTest, token(hdr(AlgES256), `{"exp":9999999999,"sub":"a","sub":"admin","aud":"wsgate","iss":"https://issuer.test"}`, es), "malformed"},
		{"sub number", esTest, token(hdr(AlgES256), with(map[string]any{"sub": 42}), es), "malformed"},
		{"nbf string", esTest, token(hdr(AlgES256), with(map[string]any{"nbf": "0"}), es), "malformed"},
		{"iat bool", esTest, token(hdr(AlgES256), with(map[string]any{"iat": true}), es), "malformed"},
		{"aud number", esTest, token(hdr(AlgES256), with(map[string]any{"aud": 1}), es), "malformed"},
		{"aud array with a number", esTest, token(hdr(AlgES256), with(map[string]any{"aud": []any{"wsgate", 1}}), es), "malformed"},
		{"aud object", esTest, token(hdr(AlgES256), with(map[string]any{"aud": map[string]any{"wsgate": true}}), es), "malformed"},
		{"iss number", esTest, token(hdr(AlgES256), with(map[string]any{"iss": 1}), es), "malformed"},

		{"expired", esTest, token(hdr(AlgES256), with(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), es), "expired"},
		{"expired just past leeway", esTest, token(hdr(AlgES256), with(map[string]any{"exp": testNow.Add(-DefaultLeeway).Unix()}), es), "expired"},
		{"exp 0", esTest, token(hdr(AlgES256), with(map[string]any{"exp": 0}), es), "expired"},
		{"exp negative", esTest, token(hdr(AlgES256), with(map[string]any{"exp": -1}), es), "expired"},
		{"nbf in the future", esTest, token(hdr(AlgES256), with(map[string]any{"nbf": testNow.Add(time.Hour).Unix()}), es), "not_yet_valid"},
		{"nbf just past leeway", esTest, token(hdr(AlgES256), with(map[string]any{"nbf": testNow.Add(DefaultLeeway + time.Second).Unix()}), es), "not_yet_valid"},
		{"iat in the future", esTest, token(hdr(AlgES256), with(map[string]any{"iat": testNow.Add(time.Hour).Unix()}), es), "not_yet_valid"},

		{"aud other", esTest, token(hdr(AlgES256), with(map[string]any{"aud": "other"}), es), "audience"},
		{"aud case differs", esTest, token(hdr(AlgES256), with(map[string]any{"aud": "WSGATE"}), es), "audience"},
		{"aud missing", esTest, token(hdr(AlgES256), with(map[string]any{"aud": nil}), es), "audience"},
		{"aud empty array", esTest, token(hdr(AlgES256), with(map[string]any{"aud": []string{}}), es), "audience"},
		{"aud array without us", esTest, token(hdr(AlgES256), with(map[string]any{"aud": []string{"a", "b"}}), es), "audience"},
		{"aud prefix", esTest, token(hdr(AlgES256), with(map[string]any{"aud": "wsgate2"}), es), "audience"},
		{"iss other", esTest, token(hdr(AlgES256), with(map[string]any{"iss": "https://evil.test"}), es), "issuer"},
		{"iss missing", esTest, token(hdr(AlgES256), with(map[string]any{"iss": nil}), es), "issuer"},
		{"iss trailing slash", esTest, token(hdr(AlgES256), with(map[string]any{"iss": "https://issuer.test/"}), es), "issuer"},
	}
	verifiers := map[string]*Verifier{}
	for _, k := range []testKey{esTest, rsTest, hsTest} {
		verifiers[k.alg] = newVerifier(t, k)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := verifiers[tc.key.alg].Verify(tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if got := Reason(err); got != tc.reason {
				t.Errorf("Reason = %q, want %q (%v)", got, tc.reason, err)
			}
			if c.Subject != "" || c.Raw != nil || !c.Expires.IsZero() {
				t.Errorf("claims returned with a refusal: %+v", c)
			}
		})
	}
}

// nonCanonical respells a base64url segment whose last character carries
// unused bits with one of those bits set: the same bytes to a lenient
// decoder, a second spelling of the same token.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		panic("segment has no unused bits")
	}
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|1])
}

func rsShort(t *testing.T) string {
	tok := token(hdr(AlgRS256), good(), rsTest.sign)
	i := strings.LastIndexByte(tok, '.')
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return tok[:i+1] + b64url(sig[1:])
}

func flipLastBit(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		panic(err)
	}
	sig[len(sig)-1] ^= 1
	return tok[:i+1] + b64url(sig)
}

// TestVerifyAccepts holds tokens that are unusual but right.
func TestVerifyAccepts(t *testing.T) {
	keys(t)
	es := esTest.sign
	cases := []struct {
		name   string
		header any
		claims any
	}{
		{"no typ", map[string]any{"alg": AlgES256}, good()},
		{"typ lower case", map[string]any{"alg": AlgES256, "typ": "jwt"}, good()},
		{"typ media type", map[string]any{"alg": AlgES256, "typ": "application/JWT"}, good()},
		{"typ OAuth access token", map[string]any{"alg": AlgES256, "typ": "at+jwt"}, good()}, // RFC 9068
		{"typ OAuth access token media type", map[string]any{"alg": AlgES256, "typ": "application/at+JWT"}, good()},
		{"kid and jku ignored", map[string]any{"alg": AlgES256, "kid": "other", "jku": "https://evil.test/keys"}, good()},
		{"header with spaces and escapes", "{ \"\\u0061lg\" : \"ES\\u0032\\u0035\\u0036\" ,\r\n\"typ\":\"J\\u0057T\" }", good()},
		{"only exp, aud and iss", hdr(AlgES256), map[string]any{"exp": testNow.Add(time.Minute).Unix(), "aud": "wsgate", "iss": "https://issuer.test"}},
		{"aud array", hdr(AlgES256), with(map[string]any{"aud": []string{"other", "wsgate"}})},
		{"aud array, one", hdr(AlgES256), with(map[string]any{"aud": []string{"wsgate"}})},
		{"aud escaped", hdr(AlgES256), `{"exp":9999999999,"aud":"ws\u0067ate","iss":"https:\/\/issuer.test","sub":"user-42"}`},
		{"exp fractional", hdr(AlgES256), with(map[string]any{"exp": json.RawMessage("1700003600.5")})},
		{"exp exponent", hdr(AlgES256), with(map[string]any{"exp": json.RawMessage("1.7000036e9")})},
		{"exp at year 9999", hdr(AlgES256), with(map[string]any{"exp": maxNumericDate})},
		{"expired within leeway", hdr(AlgES256), with(map[string]any{"exp": testNow.Add(-DefaultLeeway + time.Second).Unix()})},
		{"nbf within leeway", hdr(AlgES256), with(map[string]any{"nbf": testNow.Add(DefaultLeeway).Unix()})},
		{"iat within leeway", hdr(AlgES256), with(map[string]any{"iat": testNow.Add(DefaultLeeway).Unix()})},
		{"nbf negative", hdr(AlgES256), with(map[string]any{"nbf": -1})},
		{"private claims of every type", hdr(AlgES256), with(map[string]any{"roles": []any{"a", map[string]any{"b": []any{1, nil, true}}}, "x": "}]\"{["})},
		{"private claim duplicated (not ours to judge)", hdr(AlgES256), `{"exp":9999999999,"aud":"wsgate","iss":"https://issuer.test","x":1,"x":2}`},
		{"sub with escapes", hdr(AlgES256), with(map[string]any{"sub": "a\"b\\c\u00e9\U0001F600"})},
		{"sub empty", hdr(AlgES256), with(map[string]any{"sub": ""})},
		{"sub missing", hdr(AlgES256), with(map[string]any{"sub": nil})},
		{"EXP is not exp", hdr(AlgES256), with(map[string]any{"EXP": 1})},
	}
	v := newVerifier(t, esTest)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := mustJSON(tc.claims)
			c, err := v.Verify(token(tc.header, claims, es))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !bytes.Equal(c.Raw, claims) {
				t.Errorf("Raw = %s, want %s", c.Raw, claims)
			}
			var want struct {
				Sub string  `json:"sub"`
				Exp float64 `json:"exp"`
			}
			if err := json.Unmarshal(claims, &want); err != nil {
				t.Fatal(err)
			}
			if c.Subject != want.Sub {
				t.Errorf("Subject = %q, want %q", c.Subject, want.Sub)
			}
			if got := float64(c.Expires.UnixNano()) / 1e9; got != want.Exp && c.Expires.Unix() != int64(want.Exp) {
				t.Errorf("Expires = %v, want %v", c.Expires, want.Exp)
			}
		})
	}
}

// TestVerifyLeewayEdges pins the boundaries, to the nanosecond: a token
// is good strictly before exp+leeway and from nbf-leeway on.
func TestVerifyLeewayEdges(t *testing.T) {
	keys(t)
	const leeway = 10 * time.Second
	exp := testNow.Add(time.Hour)
	nbf := testNow.Add(2 * time.Hour)
	tokExp := token(hdr(AlgHS256), with(map[string]any{"exp": exp.Unix(), "nbf": nil, "iat": nil}), hsTest.sign)
	tokNbf := token(hdr(AlgHS256), with(map[string]any{"exp": nbf.Add(time.Hour).Unix(), "nbf": nbf.Unix(), "iat": nil}), hsTest.sign)
	tokIat := token(hdr(AlgHS256), with(map[string]any{"exp": nbf.Add(time.Hour).Unix(), "nbf": nil, "iat": nbf.Unix()}), hsTest.sign)
	for _, leewayOption := range []time.Duration{0, leeway} {
		effective := leewayOption
		if effective == 0 {
			effective = DefaultLeeway
		}
		cases := []struct {
			name   string
			tok    string
			now    time.Time
			reason string
		}{
			{"exp: just before exp+leeway", tokExp, exp.Add(effective - time.Nanosecond), ""},
			{"exp: at exp+leeway", tokExp, exp.Add(effective), "expired"},
			{"exp: at exp", tokExp, exp, ""},
			{"nbf: at nbf-leeway", tokNbf, nbf.Add(-effective), ""},
			{"nbf: just before nbf-leeway", tokNbf, nbf.Add(-effective - time.Nanosecond), "not_yet_valid"},
			{"iat: at iat-leeway", tokIat, nbf.Add(-effective), ""},
			{"iat: just before iat-leeway", tokIat, nbf.Add(-effective - time.Nanosecond), "not_yet_valid"},
		}
		for _, tc := range cases {
			t.Run(effective.String()+"/"+tc.name, func(t *testing.T) {
				now := tc.now
				v, err := New(Options{
					KeyFile: writeKey(t, t.TempDir(), "key", hsTest.keyFile),
					Leeway:  leewayOption,
					Now:     func() time.Time { return now },
				})
				if err != nil {
					t.Fatal(err)
				}
				_, err = v.Verify(tc.tok)
				if got := Reason(err); got != tc.reason {
					t.Errorf("Reason = %q, want %q (%v)", got, tc.reason, err)
				}
			})
		}
	}
}

func TestVerifyFractionalDates(t *testing.T) {
	keys(t)
	v := newVerifier(t, hsTest)
	exp := testNow.Add(-DefaultLeeway) // the token is good strictly before exp+leeway = testNow
	for _, tc := range []struct {
		exp    string
		reason string
	}{
		{"1699999970", "expired"},
		{"1699999970.0", "expired"},
		{"1699999970.000001", ""},          // float64 holds this date to 2^-22 s: 954 ns
		{"1699999970.00000001", "expired"}, // less than half of 2^-22 s: exactly exp
		{"16999999.70e2", "expired"},
		{"1699999970.5", ""},
		{"1.69999997e9", "expired"},
		{"-0", "expired"},
	} {
		if exp.Unix() != 1699999970 {
			t.Fatal("the table assumes testNow")
		}
		_, err := v.Verify(token(hdr(AlgHS256), with(map[string]any{"exp": json.RawMessage(tc.exp)}), hsTest.sign))
		if got := Reason(err); got != tc.reason {
			t.Errorf("exp %s: Reason = %q, want %q (%v)", tc.exp, got, tc.reason, err)
		}
	}
}

// TestVerifyHighS records a decision: ECDSA signatures are malleable,
// (R, S) and (R, N-S) both verify, and crypto/ecdsa accepts both. JWS
// does not ask for low S, and a token's identity is not its signature
// here (the gateway keeps no replay cache keyed by token), so the second
// form is accepted too. A replay cache added later must key on claims
// (jti), not on the token's bytes.
func TestVerifyHighS(t *testing.T) {
	keys(t)
	v := newVerifier(t, esTest)
	tok := token(hdr(AlgES256), good(), esTest.sign)
	i := strings.LastIndexByte(tok, '.')
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	flipped := tok[:i+1] + b64url(rsToJWS(r, new(big.Int).Sub(n, s)))
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(flipped); err != nil {
		t.Errorf("(R, N-S) refused: %v", err)
	}
}

// TestES256SignatureEncoding signs until R and S have covered the DER
// encoding's cases (top bit set, leading zero bytes) and checks every
// signature both ways: as given, and with one bit of R or S changed.
func TestES256SignatureEncoding(t *testing.T) {
	keys(t)
	v := newVerifier(t, esTest)
	var topBit, leadingZero, small bool
	for i := 0; i < 2000 && !(topBit && leadingZero && small) || i < 64; i++ {
		tok := token(hdr(AlgES256), with(map[string]any{"n": i}), esTest.sign)
		j := strings.LastIndexByte(tok, '.')
		sig, _ := b64.DecodeString(tok[j+1:])
		for _, half := range [][]byte{sig[:32], sig[32:]} {
			topBit = topBit || half[0]&0x80 != 0
			leadingZero = leadingZero || half[0] == 0
			small = small || half[0] == 0 && half[1]&0x80 != 0
		}
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("signature %x refused: %v", sig, err)
		}
		sig[i%64] ^= 0x40
		if _, err := v.Verify(tok[:j+1] + b64url(sig)); !errors.Is(err, ErrSignature) {
			t.Fatalf("altered signature %x: %v", sig, err)
		}
	}
	if !topBit || !leadingZero {
		t.Errorf("cases not reached: top bit %v, leading zero %v", topBit, leadingZero)
	}
}

func TestAppendDERSignature(t *testing.T) {
	full := bytes.Repeat([]byte{0xff}, 32)
	zero := make([]byte, 32)
	one := append(make([]byte, 31), 1)
	for _, tc := range []struct {
		name string
		r, s []byte
		want []byte
	}{
		{"top bits set", full, full, append(append([]byte{0x30, 70, 0x02, 33, 0}, full...), append([]byte{0x02, 33, 0}, full...)...)},
		{"zeros", zero, zero, []byte{0x30, 6, 0x02, 1, 0, 0x02, 1, 0}},
		{"ones", one, one, []byte{0x30, 6, 0x02, 1, 1, 0x02, 1, 1}},
		{"0x0080", append(make([]byte, 31), 0x80), one, []byte{0x30, 7, 0x02, 2, 0, 0x80, 0x02, 1, 1}},
	} {
		if got := appendDERSignature(nil, tc.r, tc.s); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, got, tc.want)
		}
	}
}

func TestReasonLabels(t *testing.T) {
	if Reason(nil) != "" {
		t.Error("nil")
	}
	if Reason(errors.New("x")) != "other" {
		t.Error("other")
	}
	if Reason(ErrConfig) != "other" {
		t.Error("ErrConfig")
	}
	want := []string{"missing", "malformed", "algorithm", "signature", "expired", "not_yet_valid", "audience", "issuer"}
	if got := Reasons(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Reasons() = %v", got)
	}
	for _, r := range reasons {
		if Reason(r.err) != r.label {
			t.Errorf("Reason(%v) = %q", r.err, Reason(r.err))
		}
		wrapped := errors.Join(errors.New("context"), r.err)
		if Reason(wrapped) != r.label {
			t.Errorf("Reason(wrapped %v) = %q", r.err, Reason(wrapped))
		}
	}
	// Every specific refusal wraps its sentinel and names it first.
	for _, e := range []*refusal{errEmpty, errTooLong, errAlgNone, errSignatureCheck, errExpired, errIssuer} {
		if !errors.Is(e, e.kind) || !strings.HasPrefix(e.Error(), e.kind.Error()+": ") {
			t.Errorf("%v", e)
		}
	}
}

// TestVerifyRefusalAllocatesNothing holds the package's promise that a
// flood of bad tokens makes no garbage.
func TestVerifyRefusalAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	keys(t)
	for _, k := range []testKey{esTest, rsTest, hsTest} {
		v := newVerifier(t, k)
		for name, tok := range map[string]string{
			"malformed": "a.b",
			"alg none":  token(hdr("none"), good(), k.sign),
			"signature": flipLastBit(token(hdr(k.alg), good(), k.sign)),
			"expired":   token(hdr(k.alg), with(map[string]any{"exp": 1}), k.sign),
			"audience":  token(hdr(k.alg), with(map[string]any{"aud": []string{"a", "b"}}), k.sign),
		} {
			allocs := testing.AllocsPerRun(20, func() { v.Verify(tok) })
			limit := 0.0
			if name == "signature" || name == "expired" || name == "audience" {
				limit = signatureAllocs(k.alg) // what crypto/ecdsa and crypto/rsa allocate themselves
			}
			if allocs > limit {
				t.Errorf("%s %s: %v allocations, want at most %v", k.alg, name, allocs, limit)
			}
		}
	}
}

func TestParseNumericDate(t *testing.T) {
	for _, tc := range []struct {
		in        string
		sec, nsec int64
		ok        bool
	}{
		{"0", 0, 0, true},
		{"-0", 0, 0, true},
		{"1700000000", 1700000000, 0, true},
		{"1.5", 1, 500000000, true},
		{"-1.5", -2, 500000000, true},
		{"0.9999999999", 1, 0, true}, // rounds up into the next second
		{"1e3", 1000, 0, true},
		{"253402300799", maxNumericDate, 0, true},
		{"253402300800", 0, 0, false},
		{"-62135596800", minNumericDate, 0, true},
		{"-62135596801", 0, 0, false},
		{"999999999999", 0, 0, false},
		{"1e400", 0, 0, false},
		{"", 0, 0, false},
		{`"1"`, 0, 0, false},
		{"null", 0, 0, false},
		{"true", 0, 0, false},
		{"[1]", 0, 0, false},
	} {
		sec, nsec, ok := parseNumericDate([]byte(tc.in))
		if sec != tc.sec || nsec != tc.nsec || ok != tc.ok {
			t.Errorf("%q: %d %d %v, want %d %d %v", tc.in, sec, nsec, ok, tc.sec, tc.nsec, tc.ok)
		}
	}
}

// signatureAllocs bounds what one signature check allocates inside the
// standard library, which this package cannot avoid: crypto/ecdsa and
// crypto/rsa convert the public key to their internal form on every call
// (11 and 9 small objects with Go 1.26). HMAC allocates nothing.
func signatureAllocs(alg string) float64 {
	if alg == AlgHS256 {
		return 0
	}
	return 16
}

// TestVerifyAcceptedAllocations: an accepted HS256 token costs its Raw
// copy and its Subject string, nothing more.
func TestVerifyAcceptedAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	keys(t)
	v := newVerifier(t, hsTest)
	tok := token(hdr(AlgHS256), good(), hsTest.sign)
	if n := testing.AllocsPerRun(100, func() { v.Verify(tok) }); n != 2 {
		t.Errorf("%v allocations, want 2", n)
	}
	noSub := token(hdr(AlgHS256), with(map[string]any{"sub": nil}), hsTest.sign)
	if n := testing.AllocsPerRun(100, func() { v.Verify(noSub) }); n != 1 {
		t.Errorf("without sub: %v allocations, want 1", n)
	}
}
