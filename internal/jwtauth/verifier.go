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
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MaxTokenLen is the longest token Verify decodes, in bytes; a longer one
// is refused as malformed before any work is done on it. 8 KiB holds an
// RS256 token from an 8192-bit key with several kilobytes of claims, and
// is the header size many HTTP servers allow in all.
const MaxTokenLen = 8 << 10

// DefaultLeeway is the clock skew allowed between the token's issuer and
// the gateway when Options.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// Options configure a Verifier.
type Options struct {
	// KeyFile holds the one key tokens are verified with: a PEM "PUBLIC
	// KEY", "RSA PUBLIC KEY" or "CERTIFICATE" (ECDSA P-256 for ES256, RSA
	// of 2048 to 8192 bits for RS256), or, when the file has no PEM in
	// it, an HMAC secret for HS256 (the file's bytes less one trailing
	// "\n" or "\r\n", at least 32 of them; a file that looks like a public
	// key in another form, DER, JWK or OpenSSH, is refused).
	KeyFile string
	// Audience, if set, must be the token's aud or one of its elements.
	// If empty, aud is not checked (only its type is): set it whenever
	// the issuer signs tokens for more than this gateway.
	Audience string
	// Issuer, if set, must equal the token's iss.
	Issuer string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway; negative is refused.
	Leeway time.Duration
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// Claims are what an accepted token says about its bearer.
type Claims struct {
	Subject string          // sub; "" if the token has none
	Expires time.Time       // exp, in UTC
	Raw     json.RawMessage // the whole claims set as the token carried it, for forwarding; the caller's to keep
}

// Verifier checks tokens against the key in force. Safe for concurrent
// use: the key is an immutable keyState behind an atomic pointer.
type Verifier struct {
	opts   Options // as given, with Leeway and Now defaulted; read-only after New
	leeway time.Duration
	now    func() time.Time
	key    atomic.Pointer[keyState]

	// Reloads counts reloads that put a key in force; ReloadFailures
	// those refused (the file missing or not a usable key), which left
	// the previous key in force. New's load counts as neither.
	Reloads, ReloadFailures atomic.Int64
}

// New loads the key file. Its errors wrap ErrConfig. It reads a file:
// call it off the event loops.
func New(o Options) (*Verifier, error) {
	if o.KeyFile == "" {
		return nil, fmt.Errorf("%w: no key file", ErrConfig)
	}
	if o.Leeway < 0 {
		return nil, fmt.Errorf("%w: negative leeway %v", ErrConfig, o.Leeway)
	}
	v := &Verifier{opts: o, leeway: o.Leeway, now: o.Now}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	if v.now == nil {
		v.now = time.Now
	}
	k, err := loadKey(o.KeyFile)
	if err != nil {
		return nil, err
	}
	v.key.Store(k)
	return v, nil
}

// Reload rereads the key file and puts its key in force. On failure the
// key in force stays, and the error (wrapping ErrConfig) says why. The
// key may change algorithm: tokens are then checked against the new one.
// It reads a file: call it off the event loops. Safe for concurrent use.
func (v *Verifier) Reload() error {
	k, err := loadKey(v.opts.KeyFile)
	if err != nil {
		v.ReloadFailures.Add(1)
		return err
	}
	v.key.Store(k)
	v.Reloads.Add(1)
	return nil
}

// Algorithm is the alg tokens must name for the key in force: AlgES256,
// AlgRS256 or AlgHS256. Safe for concurrent use.
func (v *Verifier) Algorithm() string { return v.key.Load().alg }

// scratch is the working memory of one Verify call, pooled so that a
// call allocates nothing it does not return. Each array is as long as
// the longest thing that can be put in it.
type scratch struct {
	token   [MaxTokenLen]byte         // the token's bytes: the base64 decoder and the hash want []byte
	decoded [MaxTokenLen / 4 * 3]byte // header then payload, decoded
	text    [MaxTokenLen / 4 * 3]byte // a JSON string's decoded text, one at a time
	sig     [MaxRSABits / 8]byte      // the signature, decoded
	der     [2 + 2*(2+1+32)]byte      // an ES256 signature re-encoded as ASN.1 DER
	sum     [sha256.Size]byte         // an HMAC result
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// b64 decodes token segments: unpadded base64url (RFC 7515 section 2),
// and canonical, so that each token has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// Verify checks a compact JWS token: its form, its alg against the key in
// force, its signature, then its claims exp (required), nbf and iat (if
// present) against the clock with the leeway, aud and iss against
// Options. It returns the claims of a token that passes, and otherwise an
// error that wraps one of the Err sentinels (Reason gives its label).
// Safe for concurrent use; it does not block. It allocates the Claims it
// returns and, through crypto/ecdsa and crypto/rsa, about ten small
// objects per signature checked; nothing else.
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) == 0 {
		return Claims{}, errEmpty
	}
	if len(token) > MaxTokenLen {
		return Claims{}, errTooLong
	}
	k := v.key.Load() // one key for the whole call, whatever Reload does meanwhile
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)

	tok := s.token[:copy(s.token[:], token)]
	dot1, dot2, err := splitCompact(tok)
	if err != nil {
		return Claims{}, err
	}
	headerB64, payloadB64, sigB64 := tok[:dot1], tok[dot1+1:dot2], tok[dot2+1:]

	header, ok := decodeSegment(s.decoded[:], headerB64)
	if !ok {
		return Claims{}, errBase64
	}
	if err := checkHeader(header, k.alg, s.text[:0]); err != nil {
		return Claims{}, err
	}
	// Only now, with the alg known to be the key's, is the signature's
	// length meaningful.
	if len(sigB64) != b64.EncodedLen(k.sigLen) {
		return Claims{}, errSignatureLen
	}
	sig, ok := decodeSegment(s.sig[:], sigB64)
	if !ok {
		return Claims{}, errBase64
	}
	if !k.verifySignature(s, tok[:dot2], sig) {
		return Claims{}, errSignatureCheck
	}
	payload, ok := decodeSegment(s.decoded[len(header):], payloadB64)
	if !ok {
		return Claims{}, errBase64
	}
	return v.checkClaims(payload, s.text[:0])
}

// splitCompact finds the two dots of header.payload.signature after
// checking every byte is base64url or a dot: the base64 decoder would
// skip newlines, and a token must have one spelling.
func splitCompact(tok []byte) (dot1, dot2 int, err error) {
	dot1, dot2 = -1, -1
	for i, c := range tok {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '.':
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return 0, 0, errSegments
			}
		default:
			return 0, 0, errAlphabet
		}
	}
	if dot2 < 0 {
		return 0, 0, errSegments
	}
	return dot1, dot2, nil
}

// decodeSegment decodes src into the start of dst, which is long enough.
func decodeSegment(dst, src []byte) ([]byte, bool) {
	n, err := b64.Decode(dst, src)
	return dst[:n], err == nil
}

// checkHeader reads the JOSE header: alg must be the key's algorithm, typ
// if present "JWT" or "at+jwt", and crit absent. text is room to decode strings in.
func checkHeader(header []byte, alg string, text []byte) error {
	if !utf8.Valid(header) || !isJSONObject(header) {
		return errHeaderJSON
	}
	var algSeen, algOK, typSeen, typOK, critSeen bool
	m := newMembers(header)
	for {
		rawName, value, ok := m.next()
		if !ok {
			break
		}
		name, ok := appendUnquoted(text, rawName)
		if !ok {
			return errHeaderJSON
		}
		switch string(name) {
		case "alg":
			if algSeen {
				return errDuplicate
			}
			algSeen = true
			got, isString := appendUnquoted(text, value)
			if !isString {
				return errAlgMismatch
			}
			if string(got) == "none" {
				return errAlgNone
			}
			algOK = string(got) == alg
		case "typ":
			if typSeen {
				return errDuplicate
			}
			typSeen = true
			got, isString := appendUnquoted(text, value)
			typOK = isString && isJWTType(got)
		case "crit":
			critSeen = true
		}
	}
	switch {
	case !algSeen:
		return errAlgMissing
	case !algOK:
		return errAlgMismatch
	case critSeen:
		return errCrit
	case typSeen && !typOK:
		return errTyp
	}
	return nil
}

// isJWTType says whether a typ value names a JWT: "JWT", or its media
// type in full, "application/jwt", in any case (RFC 7515 section 4.1.9,
// RFC 7519 section 5.1).
// isJWTType: a JWT (RFC 7519 5.1), or an OAuth access token in JWT form
// (RFC 9068 2.1: "at+jwt"), with or without the "application/" prefix.
func isJWTType(typ []byte) bool {
	for _, t := range jwtTypes {
		if bytes.EqualFold(typ, t) {
			return true
		}
	}
	return false
}

var jwtTypes = [][]byte{[]byte("JWT"), []byte("application/jwt"), []byte("at+jwt"), []byte("application/at+jwt")}

// verifySignature checks sig, already of the key's signature length, over
// signed (header.payload as the token spells them).
func (k *keyState) verifySignature(s *scratch, signed, sig []byte) bool {
	switch k.alg {
	case AlgHS256:
		mac := k.macState()
		mac.Write(signed)
		sum := mac.Sum(s.sum[:0])
		k.putMAC(mac)
		return hmac.Equal(sum, sig)
	case AlgES256:
		digest := sha256.Sum256(signed)
		return ecdsa.VerifyASN1(k.ecdsa, digest[:], appendDERSignature(s.der[:0], sig[:32], sig[32:]))
	case AlgRS256:
		digest := sha256.Sum256(signed)
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}

// appendDERSignature encodes the JWS form of an ECDSA signature, R and S
// as fixed-length big-endian integers (RFC 7518 section 3.4), as the
// ASN.1 SEQUENCE of two INTEGERs that crypto/ecdsa verifies. Each INTEGER
// is at most 33 bytes, so every length fits in one byte.
func appendDERSignature(dst, r, s []byte) []byte {
	r, s = trimLeadingZeros(r), trimLeadingZeros(s)
	dst = append(dst, 0x30, byte(derIntegerLen(r)+derIntegerLen(s)))
	return appendDERInteger(appendDERInteger(dst, r), s)
}

// trimLeadingZeros leaves one byte of a zero: DER's zero is one 0x00.
func trimLeadingZeros(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// derIntegerLen is the encoded length of the unsigned, trimmed b: tag,
// length, a zero byte if the top bit is set (DER integers are signed),
// then b.
func derIntegerLen(b []byte) int {
	if b[0]&0x80 != 0 {
		return 2 + 1 + len(b)
	}
	return 2 + len(b)
}

func appendDERInteger(dst, b []byte) []byte {
	if b[0]&0x80 != 0 {
		dst = append(dst, 0x02, byte(1+len(b)), 0)
	} else {
		dst = append(dst, 0x02, byte(len(b)))
	}
	return append(dst, b...)
}

// checkClaims reads the claims set of a token whose signature verified:
// exp required, nbf and iat optional, all against the clock with the
// leeway; aud and iss against Options; sub kept. text is room to decode
// strings in. Only an accepted token's claims are allocated.
func (v *Verifier) checkClaims(payload, text []byte) (Claims, error) {
	if !utf8.Valid(payload) || !isJSONObject(payload) {
		return Claims{}, errPayloadJSON
	}
	var (
		seen            claimSet
		expSec, expNsec int64
		nbfSec, nbfNsec int64
		iatSec, iatNsec int64
		audOK           = v.opts.Audience == ""
		issOK           = v.opts.Issuer == ""
		subject         []byte // raw JSON string, decoded once the token is accepted
	)
	m := newMembers(payload)
	for {
		rawName, value, ok := m.next()
		if !ok {
			break
		}
		name, ok := appendUnquoted(text, rawName)
		if !ok {
			return Claims{}, errPayloadJSON
		}
		claim := registeredClaim(name)
		if claim == 0 {
			continue
		}
		if seen&claim != 0 {
			return Claims{}, errDuplicate
		}
		seen |= claim
		switch claim {
		case claimExp, claimNbf, claimIat:
			sec, nsec, ok := parseNumericDate(value)
			if !ok {
				if isJSONNumber(value) {
					return Claims{}, errNumericDate
				}
				return Claims{}, errClaimType
			}
			switch claim {
			case claimExp:
				expSec, expNsec = sec, nsec
			case claimNbf:
				nbfSec, nbfNsec = sec, nsec
			case claimIat:
				iatSec, iatNsec = sec, nsec
			}
		case claimAud:
			contains, ok := audienceContains(value, v.opts.Audience, text)
			if !ok {
				return Claims{}, errClaimType
			}
			audOK = audOK || contains
		case claimIss:
			iss, ok := appendUnquoted(text, value)
			if !ok {
				return Claims{}, errClaimType
			}
			issOK = issOK || string(iss) == v.opts.Issuer
		case claimSub:
			if len(value) == 0 || value[0] != '"' {
				return Claims{}, errClaimType
			}
			subject = value
		}
	}
	if seen&claimExp == 0 {
		return Claims{}, errExpMissing
	}
	now := v.now()
	expires := time.Unix(expSec, expNsec).UTC()
	// RFC 7519 section 4.1.4: the token is good strictly before exp.
	if !now.Before(expires.Add(v.leeway)) {
		return Claims{}, errExpired
	}
	// Section 4.1.5: good from nbf on.
	if seen&claimNbf != 0 && now.Add(v.leeway).Before(time.Unix(nbfSec, nbfNsec)) {
		return Claims{}, errNotBefore
	}
	// A token issued in the future was issued by a clock this far ahead
	// of ours, or made up: refused like nbf.
	if seen&claimIat != 0 && now.Add(v.leeway).Before(time.Unix(iatSec, iatNsec)) {
		return Claims{}, errIssuedLater
	}
	if !audOK {
		return Claims{}, errAudience
	}
	if !issOK {
		return Claims{}, errIssuer
	}
	c := Claims{Expires: expires, Raw: bytes.Clone(payload)}
	if subject != nil {
		sub, _ := appendUnquoted(text, subject) // a string: checked above
		c.Subject = string(sub)
	}
	return c, nil
}

// claimSet is a set of the registered claims this package reads, one bit
// each, to refuse a token that names one twice: RFC 7519 section 4 lets a
// parser take either, and the backend's parser may take the other.
type claimSet uint8

const (
	claimExp claimSet = 1 << iota
	claimNbf
	claimIat
	claimAud
	claimIss
	claimSub
)

func registeredClaim(name []byte) claimSet {
	switch string(name) {
	case "exp":
		return claimExp
	case "nbf":
		return claimNbf
	case "iat":
		return claimIat
	case "aud":
		return claimAud
	case "iss":
		return claimIss
	case "sub":
		return claimSub
	}
	return 0
}

func isJSONNumber(v []byte) bool {
	return len(v) > 0 && (v[0] == '-' || ('0' <= v[0] && v[0] <= '9'))
}

// audienceContains reads aud, a string or an array of strings (RFC 7519
// section 4.1.3), and says whether want is in it. ok is false if aud is
// of another type.
func audienceContains(aud []byte, want string, text []byte) (contains, ok bool) {
	if len(aud) > 0 && aud[0] == '"' {
		got, ok := appendUnquoted(text, aud)
		return ok && string(got) == want, ok
	}
	if len(aud) == 0 || aud[0] != '[' {
		return false, false
	}
	e := newElements(aud)
	for {
		element, more := e.next()
		if !more {
			return contains, true
		}
		got, ok := appendUnquoted(text, element)
		if !ok {
			return false, false
		}
		contains = contains || string(got) == want
	}
}
