package jwtauth

import "errors"

// ErrConfig wraps every refusal of an Options value or a key file, from
// New and from Reload.
var ErrConfig = errors.New("jwtauth: bad token verification configuration")

// Why Verify refused a token, one sentinel per Reason label. Verify
// returns errors that wrap exactly one of them (test with errors.Is);
// Reason turns any of them into its label.
var (
	ErrMissing     = errors.New("jwtauth: no token")                              // "missing"
	ErrMalformed   = errors.New("jwtauth: malformed token")                       // "malformed"
	ErrAlgorithm   = errors.New("jwtauth: token algorithm refused")               // "algorithm"
	ErrSignature   = errors.New("jwtauth: bad token signature")                   // "signature"
	ErrExpired     = errors.New("jwtauth: token expired")                         // "expired"
	ErrNotYetValid = errors.New("jwtauth: token not yet valid")                   // "not_yet_valid"
	ErrAudience    = errors.New("jwtauth: token is not for this audience")        // "audience"
	ErrIssuer      = errors.New("jwtauth: token is not from the expected issuer") // "issuer"
)

// reasons pairs each sentinel with its metric label, in the order Reasons
// lists them.
var reasons = [...]struct {
	err   error
	label string
}{
	{ErrMissing, "missing"},
	{ErrMalformed, "malformed"},
	{ErrAlgorithm, "algorithm"},
	{ErrSignature, "signature"},
	{ErrExpired, "expired"},
	{ErrNotYetValid, "not_yet_valid"},
	{ErrAudience, "audience"},
	{ErrIssuer, "issuer"},
}

// Reason is the metric label for an error from Verify: one of the labels
// Reasons lists, "" for nil, "other" for an error that is not Verify's.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	if r, ok := err.(*refusal); ok {
		err = r.kind // the usual case, without walking a chain
	}
	for _, reason := range reasons {
		if errors.Is(err, reason.err) {
			return reason.label
		}
	}
	return "other"
}

// Reasons lists every label Reason returns for a refused token, so that
// metrics can be registered at zero before the first refusal.
func Reasons() []string {
	labels := make([]string, len(reasons))
	for i, reason := range reasons {
		labels[i] = reason.label
	}
	return labels
}

// refusal is one specific cause of a refusal, made once at package
// initialisation: returning it costs no allocation, which matters when a
// client floods the gateway with bad tokens.
type refusal struct {
	kind error  // one of the sentinels above
	msg  string // the sentinel's message and the specific cause
}

func refuse(kind error, cause string) *refusal {
	return &refusal{kind: kind, msg: kind.Error() + ": " + cause}
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// The specific causes, grouped by the sentinel they wrap.
var (
	errEmpty = refuse(ErrMissing, "empty token")

	errTooLong        = refuse(ErrMalformed, "longer than MaxTokenLen")
	errAlphabet       = refuse(ErrMalformed, "a character outside base64url and '.'")
	errSegments       = refuse(ErrMalformed, "want three segments header.payload.signature")
	errBase64         = refuse(ErrMalformed, "a segment is not unpadded canonical base64url")
	errHeaderJSON     = refuse(ErrMalformed, "header is not a UTF-8 JSON object")
	errPayloadJSON    = refuse(ErrMalformed, "payload is not a UTF-8 JSON object")
	errDuplicate      = refuse(ErrMalformed, "a header parameter or claim this package reads appears twice")
	errTyp            = refuse(ErrMalformed, `typ is not "JWT"`)
	errCrit           = refuse(ErrMalformed, "crit names extensions this package does not implement")
	errClaimType      = refuse(ErrMalformed, "a registered claim has the wrong JSON type")
	errNumericDate    = refuse(ErrMalformed, "exp, nbf or iat is outside years 0001-9999")
	errExpMissing     = refuse(ErrMalformed, "no exp claim: tokens must expire")
	errAlgMissing     = refuse(ErrAlgorithm, "header has no alg")
	errAlgNone        = refuse(ErrAlgorithm, "alg none: unsigned tokens are refused")
	errAlgMismatch    = refuse(ErrAlgorithm, "alg is not the key's algorithm")
	errSignatureLen   = refuse(ErrSignature, "signature has the wrong length for the key")
	errSignatureCheck = refuse(ErrSignature, "signature does not verify")
	errExpired        = refuse(ErrExpired, "exp has passed, leeway included")
	errNotBefore      = refuse(ErrNotYetValid, "nbf is in the future, leeway included")
	errIssuedLater    = refuse(ErrNotYetValid, "iat is in the future, leeway included")
	errAudience       = refuse(ErrAudience, "aud does not contain the configured audience")
	errIssuer         = refuse(ErrIssuer, "iss is not the configured issuer")
)
