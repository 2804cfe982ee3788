package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// The algorithms, as the JWS alg header names them (RFC 7518 section 3.1).
const (
	AlgES256 = "ES256" // ECDSA P-256 with SHA-256, signature R||S, 64 bytes
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
	AlgHS256 = "HS256" // HMAC with SHA-256
)

// Limits on key files.
const (
	MinHMACSecretLen = 32   // bytes: RFC 7518 section 3.2 wants a secret at least as long as the hash
	MinRSABits       = 2048 // RFC 7518 section 3.3
	MaxRSABits       = 8192 // bounds what one forged token can cost to check
	maxKeyFileLen    = 1 << 20
)

// keyState is one key in force: built whole by parseKey, never changed
// after, and replaced whole by Reload, so Verify reads it without a lock.
type keyState struct {
	alg    string // AlgES256, AlgRS256 or AlgHS256: the only alg a token may name
	sigLen int    // bytes: the length of every valid signature for this key

	ecdsa *ecdsa.PublicKey // set for ES256
	rsa   *rsa.PublicKey   // set for RS256

	// macs holds HMAC-SHA-256 states keyed with the secret, for HS256:
	// hmac.New allocates, a pooled state is only Reset.
	macs *sync.Pool
}

// loadKey reads and parses the key file.
func loadKey(path string) (*keyState, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: key file: %w", ErrConfig, err)
	}
	defer f.Close()
	// One byte past the limit tells a file at the limit from a longer one.
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileLen+1))
	if err != nil {
		return nil, fmt.Errorf("%w: key file %s: %w", ErrConfig, path, err)
	}
	if len(data) > maxKeyFileLen {
		return nil, fmt.Errorf("%w: key file %s is longer than %d bytes", ErrConfig, path, maxKeyFileLen)
	}
	k, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// parseKey reads a key file's contents: PEM if it contains a PEM
// boundary, an HMAC secret otherwise.
func parseKey(data []byte) (*keyState, error) {
	// A file that means to be PEM but does not parse must not fall through
	// to HMAC: its bytes, a public key, would become the secret.
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return parsePEM(data)
	}
	return parseHMACSecret(data)
}

func parsePEM(data []byte) (*keyState, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: the file has a PEM boundary but no PEM block that parses", ErrConfig)
	}
	// One key per file: a second one (a rotation, a certificate chain)
	// would be ignored silently, and tokens signed by it refused.
	if more, _ := pem.Decode(rest); more != nil {
		return nil, fmt.Errorf("%w: more than one PEM block (%s, then %s): give exactly one public key or certificate", ErrConfig, block.Type, more.Type)
	}
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PUBLIC KEY: %w", ErrConfig, err)
		}
		return publicKeyState(pub)
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: RSA PUBLIC KEY: %w", ErrConfig, err)
		}
		return publicKeyState(pub)
	case "CERTIFICATE":
		// Only the key is used: the certificate's dates and issuer say
		// nothing about the tokens its key signs.
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: CERTIFICATE: %w", ErrConfig, err)
		}
		return publicKeyState(cert.PublicKey)
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: a %s: give the public key, the gateway only verifies", ErrConfig, block.Type)
	}
	return nil, fmt.Errorf("%w: PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", ErrConfig, block.Type)
}

func publicKeyState(pub any) (*keyState, error) {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ECDSA key on %s: only P-256 (ES256) is supported", ErrConfig, pub.Curve.Params().Name)
		}
		return &keyState{alg: AlgES256, sigLen: 64, ecdsa: pub}, nil
	case *rsa.PublicKey:
		bits := pub.N.BitLen()
		if bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits: want %d to %d", ErrConfig, bits, MinRSABits, MaxRSABits)
		}
		return &keyState{alg: AlgRS256, sigLen: pub.Size(), rsa: pub}, nil
	}
	return nil, fmt.Errorf("%w: a %T key: want ECDSA P-256 or RSA", ErrConfig, pub)
}

func parseHMACSecret(data []byte) (*keyState, error) {
	// Editors and echo add one newline (CRLF on Windows); secrets are
	// bytes, so only that one is taken off.
	secret := data
	if bytes.HasSuffix(secret, []byte("\r\n")) {
		secret = secret[:len(secret)-2]
	} else if bytes.HasSuffix(secret, []byte("\n")) {
		secret = secret[:len(secret)-1]
	}
	if len(secret) < MinHMACSecretLen {
		return nil, fmt.Errorf("%w: HMAC secret of %d bytes: want at least %d (or a PEM public key)", ErrConfig, len(secret), MinHMACSecretLen)
	}
	if what := publicMaterial(secret); what != "" {
		return nil, fmt.Errorf("%w: the file looks like %s, which is public: as an HMAC secret anyone could sign tokens (give a PEM public key, or a random secret)", ErrConfig, what)
	}
	secret = bytes.Clone(secret)
	return &keyState{
		alg:    AlgHS256,
		sigLen: sha256.Size,
		macs: &sync.Pool{New: func() any {
			return hmac.New(sha256.New, secret)
		}},
	}, nil
}

// publicMaterial says what public key format secret is in, or "" if none
// this package recognises. A public key given where a secret is expected
// is the key confusion attack made by configuration.
func publicMaterial(secret []byte) string {
	if _, err := x509.ParsePKIXPublicKey(secret); err == nil {
		return "a DER public key"
	}
	if _, err := x509.ParsePKCS1PublicKey(secret); err == nil {
		return "a DER RSA public key"
	}
	if _, err := x509.ParseCertificate(secret); err == nil {
		return "a DER certificate"
	}
	trimmed := bytes.TrimSpace(secret)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(trimmed) {
		return "JSON (a JWK or JWK set)"
	}
	for _, prefix := range []string{"ssh-rsa ", "ssh-ed25519 ", "ssh-dss ", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"} {
		if bytes.HasPrefix(trimmed, []byte(prefix)) {
			return "an OpenSSH public key"
		}
	}
	return ""
}

// macState takes a keyed HMAC state from the pool, reset; give it back
// with putMAC.
func (k *keyState) macState() hash.Hash {
	mac := k.macs.Get().(hash.Hash)
	mac.Reset()
	return mac
}

func (k *keyState) putMAC(mac hash.Hash) { k.macs.Put(mac) }
