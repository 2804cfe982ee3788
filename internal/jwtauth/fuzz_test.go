package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// interopCase is one token in testdata/interop.json, made by
// testdata/gen.py with OpenSSL through pyca/cryptography.
type interopCase struct {
	Name   string `json:"name"`
	Key    string `json:"key"` // a file in testdata
	Token  string `json:"token"`
	Reason string `json:"reason"` // "" for accepted
}

func interopCases(t testing.TB) []interopCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "interop.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []interopCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func interopOptions(keyFile string) Options {
	return Options{
		KeyFile:  filepath.Join("testdata", keyFile),
		Audience: "wsgate",
		Issuer:   "https://issuer.test",
		Now:      fixedClock,
	}
}

// TestInterop verifies tokens another implementation signed, against key
// files another implementation wrote.
func TestInterop(t *testing.T) {
	for _, tc := range interopCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			v, err := New(interopOptions(tc.Key))
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(tc.Token)
			if got := Reason(err); got != tc.Reason {
				t.Fatalf("Reason = %q, want %q (%v)", got, tc.Reason, err)
			}
			if err == nil && (c.Subject != "user-42" || c.Expires.Unix() != testNow.Unix()+3600 || !bytes.Contains(c.Raw, []byte(`"room": "lobby"`))) {
				t.Errorf("claims %+v, raw %s", c, c.Raw)
			}
		})
	}
}

// fuzzVerifiers are the verifiers of the testdata keys with their
// references, made once: fuzzing runs the target many times per process.
var (
	fuzzOnce      sync.Once
	fuzzVerifiers []*Verifier
	fuzzRefs      []*referenceVerifier
)

func fuzzSetup(t testing.TB) {
	fuzzOnce.Do(func() {
		for _, file := range []string{"es256.pub.pem", "rs256.pub.pem", "hs256.secret"} {
			o := interopOptions(file)
			v, err := New(o)
			if err != nil {
				panic(err)
			}
			fuzzVerifiers = append(fuzzVerifiers, v)
			fuzzRefs = append(fuzzRefs, referenceKey(o, v.Algorithm()))
		}
	})
}

// referenceKey loads a key file the plain way, for referenceVerifier.
func referenceKey(o Options, alg string) *referenceVerifier {
	data, err := os.ReadFile(o.KeyFile)
	if err != nil {
		panic(err)
	}
	r := &referenceVerifier{alg: alg, audience: o.Audience, issuer: o.Issuer, leeway: DefaultLeeway, now: o.Now()}
	if alg == AlgHS256 {
		r.secret = bytes.TrimSuffix(data, []byte("\n"))
		return r
	}
	block, _ := pem.Decode(data)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		panic(err)
	}
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		r.ecdsa = pub
	case *rsa.PublicKey:
		r.rsa = pub
	}
	return r
}

// FuzzVerify feeds arbitrary tokens to verifiers of each algorithm:
// Verify must not panic, and must give the answer referenceVerifier gives
// (accepting exactly what it accepts, with the same claims, and refusing
// with the same reason). Seeds: the interop tokens, and pieces of them
// put together wrong.
func FuzzVerify(f *testing.F) {
	fuzzSetup(f)
	for _, tc := range interopCases(f) {
		f.Add(tc.Token)
		parts := strings.Split(tc.Token, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".." + parts[2])
		f.Add(tc.Token + "." + parts[2])
	}
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Add(b64url([]byte(`{"alg":"HS256","alg":"HS256"}`)) + ".e30.AAAA")
	f.Add(b64url([]byte(`{"alg":"ES256","crit":["x"]}`)) + ".e30." + b64url(make([]byte, 64)))
	f.Add(b64url([]byte(`{"alg":"ES256"}`)) + "." + b64url([]byte(`{"exp":1e999}`)) + "." + b64url(make([]byte, 64)))
	f.Add(b64url([]byte(`{"alg":"ES256"}`)) + "." + b64url([]byte(strings.Repeat("[", 5000))) + "." + b64url(make([]byte, 64)))
	f.Add(b64url([]byte(`{"alg":"RS256","x":"\ud800\udc00\\"}`)) + ".e30." + b64url(make([]byte, 256)))
	f.Fuzz(func(t *testing.T, token string) {
		for i, v := range fuzzVerifiers {
			got, err := v.Verify(token)
			wantReason, want := fuzzRefs[i].verify(token)
			if gotReason := Reason(err); gotReason != wantReason {
				t.Fatalf("%s: Reason %q (%v), reference says %q", v.Algorithm(), gotReason, err, wantReason)
			}
			if err == nil && (got.Subject != want.Subject || !got.Expires.Equal(want.Expires) || !bytes.Equal(got.Raw, want.Raw)) {
				t.Fatalf("%s: claims %+v, reference says %+v", v.Algorithm(), got, want)
			}
		}
	})
}

// FuzzClaims signs arbitrary header and claims JSON with the HMAC key, so
// that the fuzzer reaches the header and claims rules past the signature,
// and holds Verify to referenceVerifier's answers.
func FuzzClaims(f *testing.F) {
	fuzzSetup(f)
	hs := fuzzVerifiers[2]
	ref := fuzzRefs[2]
	sign := signHS256(ref.secret)
	for _, tc := range []struct{ header, claims string }{
		{`{"alg":"HS256","typ":"JWT"}`, `{"exp":1700003600,"aud":"wsgate","iss":"https://issuer.test","sub":"u"}`},
		{`{"alg":"HS256"}`, `{"exp":1700003600.25,"aud":["x","wsgate"],"iss":"https:\/\/issuer.test","sub":"\u00e9\ud83d\ude00"}`},
		{`{"alg":"HS256"}`, `{"exp":1700000000,"nbf":1700000031,"aud":"wsgate","iss":"https://issuer.test"}`},
		{`{"alg":"HS256"}`, `{"exp":1e3,"iat":-5,"aud":"wsgate","iss":"https://issuer.test"}`},
		{`{"alg":"HS256"}`, `{"exp":99999999999999999999,"aud":"wsgate","iss":"https://issuer.test"}`},
		{`{"\u0061lg":"HS256","typ":"application/jwt"}`, `{"\u0065xp":1700003600,"exp":1}`},
		{`{"alg":"none","alg":"HS256"}`, `{}`},
		{`{"typ":"JWT","alg":"HS256","crit":[]}`, `{"exp":1700003600}`},
		{` { "alg" : "HS256" } `, ` { "exp" : 1700003600 , "aud" : [ "wsgate" ] , "iss" : "https://issuer.test" , "x" : { "y" : [ "}" , "]" , "\"" ] } } `},
		{`{"alg":"HS256"}`, `{"exp":1700003600,"aud":"wsgate","iss":"https://issuer.test","sub":null}`},
	} {
		f.Add([]byte(tc.header), []byte(tc.claims))
	}
	f.Fuzz(func(t *testing.T, header, claims []byte) {
		tok := token(header, claims, sign)
		got, err := hs.Verify(tok)
		wantReason, want := ref.verify(tok)
		if gotReason := Reason(err); gotReason != wantReason {
			t.Fatalf("header %q claims %q: Reason %q (%v), reference says %q", header, claims, gotReason, err, wantReason)
		}
		if err == nil && (got.Subject != want.Subject || !got.Expires.Equal(want.Expires) || !bytes.Equal(got.Raw, want.Raw)) {
			t.Fatalf("header %q claims %q: claims %+v, reference says %+v", header, claims, got, want)
		}
	})
}

// FuzzMembers holds the in-place walk over a JSON object to what
// encoding/json's decoder finds in it, and appendUnquoted to what
// json.Unmarshal makes of each name and string.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":1}`, ` { "a" : [1, {"b":"}"}] , "c\"d" : "e\\" , "f":null,"g":true,"h":-1.5e3 } `,
		`{"\u00e9\ud83d\ude00\ud800x\/":"\b\f\n\r\t"}`, `{"a":{"a":{"a":[[[]]]}}}`, `[1]`, `{"a":1,}`, `{"a"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// On any text: no panic, and a walk that ends.
		m := newMembers(data)
		for i := 0; ; i++ {
			name, value, ok := m.next()
			if !ok {
				break
			}
			appendUnquoted(nil, name)
			appendUnquoted(nil, value)
			if i > len(data) {
				t.Fatal("walk does not end")
			}
		}
		if !utf8.Valid(data) || !isJSONObject(data) {
			return
		}
		want, ok := objectMembers(data)
		if !ok {
			t.Fatalf("%q: isJSONObject but the decoder disagrees", data)
		}
		m = newMembers(data)
		for i := 0; ; i++ {
			rawName, value, ok := m.next()
			if !ok {
				if i != len(want) {
					t.Fatalf("%q: %d members, want %d", data, i, len(want))
				}
				return
			}
			if i >= len(want) {
				t.Fatalf("%q: more members than %d", data, len(want))
			}
			name, ok := appendUnquoted(make([]byte, 0, len(rawName)), rawName)
			if !ok || string(name) != want[i].name {
				t.Fatalf("%q: member %d named %q (%v), want %q", data, i, name, ok, want[i].name)
			}
			var v any
			dec := json.NewDecoder(bytes.NewReader(value))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil || dec.More() {
				t.Fatalf("%q: member %d value %q is not one JSON value: %v", data, i, value, err)
			}
			if !jsonEqual(v, want[i].value) {
				t.Fatalf("%q: member %d value %q, want %v", data, i, value, want[i].value)
			}
			if s, isString := want[i].value.(string); isString {
				got, ok := appendUnquoted(nil, value)
				if !ok || string(got) != s {
					t.Fatalf("%q: member %d string %q (%v), want %q", data, i, got, ok, s)
				}
			}
			if arr, isArray := want[i].value.([]any); isArray {
				e := newElements(value)
				for j := 0; ; j++ {
					el, more := e.next()
					if !more {
						if j != len(arr) {
							t.Fatalf("%q: %d elements, want %d", value, j, len(arr))
						}
						break
					}
					var ev any
					dec := json.NewDecoder(bytes.NewReader(el))
					dec.UseNumber()
					if j >= len(arr) || dec.Decode(&ev) != nil || !jsonEqual(ev, arr[j]) {
						t.Fatalf("%q: element %d %q", value, j, el)
					}
				}
			}
		}
	})
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// TestReferenceAgreesOnInterop runs FuzzVerify's comparison on the
// interop tokens against every key, so that the reference is seen to
// accept and to refuse for each reason the tokens cover.
func TestReferenceAgreesOnInterop(t *testing.T) {
	fuzzSetup(t)
	for _, tc := range interopCases(t) {
		for i, v := range fuzzVerifiers {
			_, err := v.Verify(tc.Token)
			want, _ := fuzzRefs[i].verify(tc.Token)
			if Reason(err) != want {
				t.Errorf("%s on %s: %q, reference %q", tc.Name, v.Algorithm(), Reason(err), want)
			}
		}
	}
}
