package codec

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// closePayload is code in network order followed by reason.
func closePayload(code ws.StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func TestParseClosePayload(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		code    ws.StatusCode // wanted close code
		reason  string
		errCode ws.StatusCode // 0: accepted
	}{
		{
			name:    "empty",
			payload: nil,
			code:    CloseNoStatus,
		},
		{
			name:    "empty non-nil",
			payload: []byte{},
			code:    CloseNoStatus,
		},
		{
			name:    "one byte",
			payload: []byte{0x03},
			errCode: CloseProtocolError,
		},
		{
			name:    "normal without reason",
			payload: []byte{0x03, 0xe8},
			code:    CloseNormal,
		},
		{
			name:    "going away with reason",
			payload: closePayload(CloseGoingAway, "bye"),
			code:    CloseGoingAway,
			reason:  "bye",
		},
		{
			name:    "UTF-8 reason",
			payload: closePayload(4000, "κόσμε 😀"),
			code:    4000,
			reason:  "κόσμε 😀",
		},
		{
			name:    "reason of 123 bytes",
			payload: closePayload(CloseNormal, strings.Repeat("r", 123)),
			code:    CloseNormal,
			reason:  strings.Repeat("r", 123),
		},
		{
			name:    "overlong reason",
			payload: closePayload(CloseNormal, "\xc0\xaf"),
			errCode: CloseInvalidPayload,
		},
		{
			name:    "surrogate in reason",
			payload: closePayload(CloseNormal, "ok \xed\xa0\x80"),
			errCode: CloseInvalidPayload,
		},
		{
			name:    "truncated rune in reason",
			payload: closePayload(CloseGoingAway, "κόσμ\xce"),
			errCode: CloseInvalidPayload,
		},
		{
			name:    "code past U+10FFFF in reason",
			payload: closePayload(3000, "\xf4\x90\x80\x80"),
			errCode: CloseInvalidPayload,
		},
		{
			name:    "invalid code wins over invalid reason",
			payload: closePayload(1005, "\xff"),
			errCode: CloseProtocolError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, reason, err := ParseClosePayload(tt.payload)
			if tt.errCode != 0 {
				if pe := asProtocolError(t, err); pe.Code != tt.errCode {
					t.Fatalf(
						"code %d (%s), want %d",
						pe.Code, pe.Reason, tt.errCode,
					)
				}
				return
			}
			if err != nil || code != tt.code || string(reason) != tt.reason {
				t.Fatalf(
					"ParseClosePayload = %d, %q, %v; want %d, %q",
					code, reason, err, tt.code, tt.reason,
				)
			}
			// The reason aliases the payload.
			if len(reason) > 0 && &reason[0] != &tt.payload[2] {
				t.Fatal(
					"reason does not alias the payload",
				)
			}
		})
	}
}

// TestCloseCodeClasses checks every 16-bit code against the classes of RFC
// 6455 section 7.4 and the IANA registry.
func TestCloseCodeClasses(t *testing.T) {
	classes := []struct {
		lo, hi ws.StatusCode
		valid  bool
	}{
		{0, 999, false},
		{1000, 1003, true},
		{1004, 1006, false},
		{1007, 1014, true},
		{1015, 1015, false},
		{1016, 2999, false},
		{3000, 4999, true},
		{5000, 65535, false},
	}
	for _, c := range classes {
		for code := int(c.lo); code <= int(c.hi); code++ {
			sc := ws.StatusCode(code)
			if got := ValidCloseCode(sc); got != c.valid {
				t.Fatalf(
					"ValidCloseCode(%d) = %v, want %v",
					code, got, c.valid,
				)
			}
			for _, reason := range []string{"", "why"} {
				got, r, err := ParseClosePayload(closePayload(sc, reason))
				if c.valid {
					if err != nil || got != sc || string(r) != reason {
						t.Fatalf(
							"ParseClosePayload(%d, %q) = %d, %q, %v",
							code, reason, got, r, err,
						)
					}
					continue
				}
				if pe := asProtocolError(t, err); pe.Code != CloseProtocolError {
					t.Fatalf(
						"ParseClosePayload(%d): close %d, want 1002",
						code, pe.Code,
					)
				}
			}
		}
	}
	// The named edges.
	for _, code := range []ws.StatusCode{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
		if ValidCloseCode(code) {
			t.Errorf(
				"code %d accepted",
				code,
			)
		}
	}
	for _, code := range []ws.StatusCode{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999} {
		if !ValidCloseCode(code) {
			t.Errorf(
				"code %d refused",
				code,
			)
		}
	}
}

func TestAppendCloseFrame(t *testing.T) {
	tests := []struct {
		name   string
		code   ws.StatusCode
		reason string
		want   []byte // whole frame, nil to skip
	}{
		{
			name: "no status",
			code: CloseNoStatus,
			want: []byte{0x88, 0x00},
		},
		{
			name:   "zero code is no status",
			code:   0,
			reason: "ignored",
			want:   []byte{0x88, 0x00},
		},
		{
			name: "normal",
			code: CloseNormal,
			want: []byte{0x88, 0x02, 0x03, 0xe8},
		},
		{
			name:   "going away with reason",
			code:   CloseGoingAway,
			reason: "bye",
			want:   []byte{0x88, 0x05, 0x03, 0xe9, 'b', 'y', 'e'},
		},
		{
			name:   "too big, UTF-8 reason",
			code:   CloseMessageTooBig,
			reason: "κόσμε",
		},
		{
			name:   "reason of 123 bytes kept",
			code:   CloseTryAgainLater,
			reason: strings.Repeat("a", 123),
		},
		{
			name:   "application code",
			code:   4999,
			reason: "app",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte{0xaa}
			out := AppendCloseFrame(prefix, tt.code, tt.reason)
			if out[0] != 0xaa {
				t.Fatal(
					"AppendCloseFrame lost dst",
				)
			}
			frame := out[1:]
			if tt.want != nil && !bytes.Equal(frame, tt.want) {
				t.Fatalf(
					"frame %x, want %x",
					frame, tt.want,
				)
			}
			// A server sends it unmasked: a client parses it.
			h, n, err := ParseHeader(frame, RoleClient, 0)
			if err != nil || h.OpCode != ws.OpClose || !h.Fin || h.Masked || n+int(h.Length) != len(frame) {
				t.Fatalf(
					"ParseHeader(%x) = %+v, %d, %v",
					frame, h, n, err,
				)
			}
			code, reason, err := ParseClosePayload(frame[n:])
			wantCode, wantReason := tt.code, tt.reason
			if tt.code == 0 || tt.code == CloseNoStatus {
				wantCode, wantReason = CloseNoStatus, ""
			}
			if err != nil || code != wantCode || string(reason) != wantReason {
				t.Fatalf(
					"ParseClosePayload = %d, %q, %v; want %d, %q",
					code, reason, err, wantCode, wantReason,
				)
			}
		})
	}
}

// TestCloseReasonTruncation checks that a long reason is cut to 123 bytes
// at a rune boundary, as long as possible, and stays valid UTF-8.
func TestCloseReasonTruncation(t *testing.T) {
	reasons := []string{
		strings.Repeat("a", 124),
		strings.Repeat("a", 500),
		strings.Repeat("a", 122) + "é",  // 2-byte rune across 123
		strings.Repeat("a", 121) + "€x", // 3-byte rune across 123
		strings.Repeat("a", 120) + "😀x", // 4-byte rune across 123
		strings.Repeat("a", 119) + "😀x", // 4-byte rune ending at 123
		strings.Repeat("κ", 100),        // 2 bytes each: 122
		strings.Repeat("世", 50),         // 3 bytes each: 123
		strings.Repeat("😀", 40),         // 4 bytes each: 120
		"x" + strings.Repeat("😀", 40),   // 121
	}
	for _, reason := range reasons {
		for _, via := range []string{"AppendCloseFrame", "PutClosePayload"} {
			var payload []byte
			switch via {
			case "AppendCloseFrame":
				frame := AppendCloseFrame(nil, CloseGoingAway, reason)
				h, n, err := ParseHeader(frame, RoleClient, 0)
				if err != nil || h.Length > 125 {
					t.Fatalf(
						"close frame for %d-byte reason: %+v, %v",
						len(reason), h, err,
					)
				}
				payload = frame[n:]
			case "PutClosePayload":
				buf := make([]byte, 2+len(reason))
				payload = buf[:PutClosePayload(buf, CloseGoingAway, reason)]
			}
			code, got, err := ParseClosePayload(payload)
			if err != nil || code != CloseGoingAway {
				t.Fatalf(
					"%s: ParseClosePayload: %d, %v",
					via, code, err,
				)
			}
			if len(got) > MaxCloseReason || !utf8.Valid(got) || !strings.HasPrefix(reason, string(got)) {
				t.Fatalf(
					"%s: reason cut to %d bytes %q",
					via, len(got), got,
				)
			}
			// As long as possible: the next rune would not fit.
			_, size := utf8.DecodeRuneInString(reason[len(got):])
			if len(got)+size <= MaxCloseReason {
				t.Fatalf(
					"%s: reason cut to %d bytes, next rune of %d would fit",
					via, len(got), size,
				)
			}
		}
	}
	if MaxCloseReason != 123 {
		t.Fatalf(
			"MaxCloseReason = %d",
			MaxCloseReason,
		)
	}
}
