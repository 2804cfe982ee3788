package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The tests' clock: every token is judged at this instant.
var testNow = time.Unix(1_700_000_000, 0)

func fixedClock() time.Time { return testNow }

// testKey is a signing key made in the test and the file that holds its
// verifying half.
type testKey struct {
	alg     string
	keyFile []byte                           // what New reads
	sign    func(signingInput []byte) []byte // the JWS signature over header.payload
}

// Keys are slow to make (RSA especially): each kind is made once per run.
var (
	keysOnce                      sync.Once
	esKey, esKey2                 *ecdsa.PrivateKey
	rsaKey, rsaKey2               *rsa.PrivateKey
	hmacSecret, hmacSecret2       []byte
	esTest, rsTest, hsTest        testKey
	esTest2, rsTest2, hsTest2     testKey
	rsaPKCS1File, rsaCertFile     []byte
	esCertFile                    []byte
	rsaPublicPEMFile, esPublicPEM []byte
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		esKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		esKey2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		hmacSecret = randomSecret(32)
		hmacSecret2 = randomSecret(64)

		esTest = testKey{AlgES256, pemPublicKey(&esKey.PublicKey), signES256(esKey)}
		esTest2 = testKey{AlgES256, pemPublicKey(&esKey2.PublicKey), signES256(esKey2)}
		rsTest = testKey{AlgRS256, pemPublicKey(&rsaKey.PublicKey), signRS256(rsaKey)}
		rsTest2 = testKey{AlgRS256, pemPublicKey(&rsaKey2.PublicKey), signRS256(rsaKey2)}
		hsTest = testKey{AlgHS256, append(hmacSecret, '\n'), signHS256(hmacSecret)}
		hsTest2 = testKey{AlgHS256, hmacSecret2, signHS256(hmacSecret2)}

		rsaPublicPEMFile = rsTest.keyFile
		esPublicPEM = esTest.keyFile
		rsaPKCS1File = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
		rsaCertFile = pemCertificate(rsaKey, &rsaKey.PublicKey)
		esCertFile = pemCertificate(esKey, &esKey.PublicKey)
	})
}

func randomSecret(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	// A secret ending in a newline would lose it to the trim; keep the
	// tests about what they test.
	b[n-1] = 'x'
	return b
}

func pemPublicKey(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func pemCertificate(priv crypto.Signer, pub any) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "token signer"},
		// Expired on purpose: the certificate only carries the key.
		NotBefore: time.Unix(0, 0),
		NotAfter:  time.Unix(1, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// signES256 signs as RFC 7518 section 3.4 says: R and S, 32 bytes each,
// big-endian, concatenated.
func signES256(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		digest := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			panic(err)
		}
		return rsToJWS(r, s)
	}
}

func rsToJWS(r, s *big.Int) []byte {
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

func signRS256(k *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		digest := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func signHS256(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		mac := hmac.New(sha256.New, secret)
		mac.Write(in)
		return mac.Sum(nil)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// mustJSON encodes v, or passes a string or []byte through as JSON text
// already made (for the tests that need exact bytes).
func mustJSON(v any) []byte {
	switch v := v.(type) {
	case string:
		return []byte(v)
	case []byte:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// token makes header.payload.signature with header and claims as given
// (values or raw JSON text) and sign over them.
func token(header, claims any, sign func([]byte) []byte) string {
	in := b64url(mustJSON(header)) + "." + b64url(mustJSON(claims))
	return in + "." + b64url(sign([]byte(in)))
}

// good are claims every test verifier accepts at testNow.
func good() map[string]any {
	return map[string]any{
		"sub": "user-42",
		"exp": testNow.Add(time.Hour).Unix(),
		"iat": testNow.Add(-time.Minute).Unix(),
		"nbf": testNow.Add(-time.Minute).Unix(),
		"aud": "wsgate",
		"iss": "https://issuer.test",
	}
}

// with returns good claims changed: a nil value deletes the claim.
func with(changes map[string]any) map[string]any {
	c := good()
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func hdr(alg string) map[string]any { return map[string]any{"alg": alg, "typ": "JWT"} }

// writeKey writes content to a new file in dir and returns its path.
func writeKey(t testing.TB, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replaceKey swaps the file at path for content by rename, as a
// deployment would, so a Reload never reads half a file.
func replaceKey(t testing.TB, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newVerifier makes a verifier for k with the test clock, audience
// "wsgate" and issuer "https://issuer.test".
func newVerifier(t testing.TB, k testKey) *Verifier {
	t.Helper()
	v, err := New(Options{
		KeyFile:  writeKey(t, t.TempDir(), "key", k.keyFile),
		Audience: "wsgate",
		Issuer:   "https://issuer.test",
		Now:      fixedClock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
