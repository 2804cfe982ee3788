package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewKeyFiles(t *testing.T) {
	keys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPrivDER, err := x509.MarshalECPrivateKey(esKey)
	if err != nil {
		t.Fatal(err)
	}
	pkixDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	certBlock, _ := pem.Decode(rsaCertFile)

	accepted := []struct {
		name, file, alg string
		content         []byte
		sign            func([]byte) []byte
	}{
		{"EC PUBLIC KEY", "ec.pem", AlgES256, esPublicPEM, esTest.sign},
		{"RSA PUBLIC KEY (PKIX)", "rsa.pem", AlgRS256, rsaPublicPEMFile, rsTest.sign},
		{"RSA PUBLIC KEY (PKCS#1)", "rsa1.pem", AlgRS256, rsaPKCS1File, rsTest.sign},
		{"RSA CERTIFICATE, expired", "rsa.crt", AlgRS256, rsaCertFile, rsTest.sign},
		{"EC CERTIFICATE", "ec.crt", AlgES256, esCertFile, esTest.sign},
		{"PEM after text", "text.pem", AlgES256, append([]byte("issuer: example\nsubject=token signer\n"), esPublicPEM...), esTest.sign},
		{"HMAC secret with newline", "s1", AlgHS256, append(bytes.Clone(hmacSecret), '\n'), hsTest.sign},
		{"HMAC secret with CRLF", "s2", AlgHS256, append(bytes.Clone(hmacSecret), '\r', '\n'), hsTest.sign},
		{"HMAC secret bare", "s3", AlgHS256, hmacSecret, hsTest.sign},
		{"HMAC secret ending in CR keeps it", "s7", AlgHS256, append(bytes.Clone(hmacSecret), '\r'), signHS256(append(bytes.Clone(hmacSecret), '\r'))},
		{"HMAC secret of 32 bytes exactly", "s4", AlgHS256, hmacSecret[:32], signHS256(hmacSecret[:32])},
		{"HMAC secret, binary", "s5", AlgHS256, []byte("\x00\x01\x02\xff-----BEGI\x00abcdefghijklmnopqrstuvwxyz"), signHS256([]byte("\x00\x01\x02\xff-----BEGI\x00abcdefghijklmnopqrstuvwxyz"))},
		{"HMAC secret longer than a block", "s6", AlgHS256, bytes.Repeat([]byte("k"), 200), signHS256(bytes.Repeat([]byte("k"), 200))},
	}
	dir := t.TempDir()
	for _, tc := range accepted {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			v, err := New(Options{KeyFile: writeKey(t, dir, tc.file, tc.content), Now: fixedClock})
			if err != nil {
				t.Fatal(err)
			}
			if v.Algorithm() != tc.alg {
				t.Fatalf("Algorithm() = %q, want %q", v.Algorithm(), tc.alg)
			}
			if _, err := v.Verify(token(hdr(tc.alg), good(), tc.sign)); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}

	refused := []struct {
		name, want string // want: a fragment of the error's text
		content    []byte
	}{
		{"empty file", "HMAC secret of 0 bytes", nil},
		{"newline only", "HMAC secret of 0 bytes", []byte("\n")},
		{"HMAC secret of 31 bytes", "HMAC secret of 31 bytes", append(bytes.Repeat([]byte("k"), 31), '\n')},
		{"31 bytes and two newlines trim one", "HMAC secret of 31 bytes", append(bytes.Repeat([]byte("k"), 30), '\n', '\n')},
		{"PEM boundary, broken block", "no PEM block that parses", []byte("-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n" + strings.Repeat("x", 40))},
		{"PEM truncated", "no PEM block that parses", esPublicPEM[:len(esPublicPEM)-10]},
		{"PEM block with garbage DER", "PUBLIC KEY", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")})},
		{"RSA PUBLIC KEY with PKIX DER", "RSA PUBLIC KEY", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkixDER})},
		{"CERTIFICATE garbage", "CERTIFICATE", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})},
		{"two public keys", "more than one PEM block", append(bytes.Clone(esPublicPEM), rsaPublicPEMFile...)},
		{"certificate chain", "more than one PEM block", append(bytes.Clone(rsaCertFile), esCertFile...)},
		{"EC private key", "give the public key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPrivDER})},
		{"PKCS#8 private key", "give the public key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")})},
		{"unknown PEM type", "want PUBLIC KEY", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte("x")})},
		{"P-384 key", "only P-256", pemPublicKey(&p384.PublicKey)},
		{"RSA 1024", "RSA key of 1024 bits", pemPublicKey(&rsa1024.PublicKey)},
		{"Ed25519 key", "want ECDSA P-256 or RSA", pemPublicKey(edPub)},
		{"DER public key as secret", "DER public key", pkixDER},
		{"DER PKCS#1 key as secret", "DER RSA public key", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)},
		{"DER certificate as secret", "DER certificate", certBlock.Bytes},
		{"JWK as secret", "JSON", []byte(`{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}` + "\n")},
		{"JWK set as secret", "JSON", []byte(` {"keys":[{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ"}]}`)},
		{"OpenSSH key as secret", "OpenSSH", []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host\n")},
		{"too big", "longer than", bytes.Repeat([]byte("k"), maxKeyFileLen+1)},
	}
	for _, tc := range refused {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := New(Options{KeyFile: writeKey(t, dir, "refused", tc.content)})
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}

	for name, o := range map[string]Options{
		"no key file":     {},
		"missing file":    {KeyFile: filepath.Join(dir, "nope")},
		"a directory":     {KeyFile: dir},
		"negative leeway": {KeyFile: writeKey(t, dir, "ok", hsTest.keyFile), Leeway: -time.Second},
	} {
		if _, err := New(o); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

func TestReload(t *testing.T) {
	keys(t)
	path := writeKey(t, t.TempDir(), "key", esTest.keyFile)
	v, err := New(Options{KeyFile: path, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	oldTok := token(hdr(AlgES256), good(), esTest.sign)
	newTok := token(hdr(AlgES256), good(), esTest2.sign)
	hsTok := token(hdr(AlgHS256), good(), hsTest.sign)
	expect := func(step, tok, reason string) {
		t.Helper()
		_, err := v.Verify(tok)
		if got := Reason(err); got != reason {
			t.Errorf("%s: Reason = %q, want %q (%v)", step, got, reason, err)
		}
	}
	expect("before reload, old key", oldTok, "")
	expect("before reload, new key", newTok, "signature")

	replaceKey(t, path, esTest2.keyFile)
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	expect("after reload, old key", oldTok, "signature")
	expect("after reload, new key", newTok, "")

	// A reload that fails keeps the key in force.
	for name, content := range map[string][]byte{
		"short secret": []byte("short\n"),
		"broken PEM":   esPublicPEM[:len(esPublicPEM)/2],
		"private key":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")}),
	} {
		replaceKey(t, path, content)
		if err := v.Reload(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Reload = %v, want ErrConfig", name, err)
		}
		expect("after failed reload ("+name+")", newTok, "")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); !errors.Is(err, ErrConfig) {
		t.Errorf("file removed: Reload = %v, want ErrConfig", err)
	}
	expect("after failed reload (file removed)", newTok, "")

	// The key may change algorithm; tokens for the old one are then
	// refused on their alg before any signature is checked.
	replaceKey(t, path, hsTest.keyFile)
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if v.Algorithm() != AlgHS256 {
		t.Errorf("Algorithm() = %q", v.Algorithm())
	}
	expect("after switch to HMAC, ES256 token", newTok, "algorithm")
	expect("after switch to HMAC, HS256 token", hsTok, "")

	if got, want := v.Reloads.Load(), int64(2); got != want {
		t.Errorf("Reloads = %d, want %d", got, want)
	}
	if got, want := v.ReloadFailures.Load(), int64(4); got != want {
		t.Errorf("ReloadFailures = %d, want %d", got, want)
	}
}
