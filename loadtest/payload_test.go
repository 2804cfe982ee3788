package loadtest

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{MinMessageSize, 48, jsonMinSize - 1, jsonMinSize, 256, 1024, 65536} {
		l, err := newPayloadLayout(size)
		if err != nil {
			t.Fatal(err)
		}
		msg := append([]byte(nil), l.template...)
		l.fill(msg, 0xdeadbeef, 7, 1_234_567_890_123)
		if len(msg) != size {
			t.Fatalf("size %d: message is %d bytes", size, len(msg))
		}
		if !utf8.Valid(msg) {
			t.Fatalf("size %d: not valid UTF-8, text messages would be refused", size)
		}
		if size >= jsonMinSize {
			var v map[string]string
			if err := json.Unmarshal(msg, &v); err != nil {
				t.Fatalf("size %d: not JSON: %v\n%s", size, err, msg)
			}
			if v["c"] != "deadbeef" || v["s"] != "00000007" {
				t.Fatalf("size %d: fields %v", size, v)
			}
		}
		c, s, ts, err := l.parse(msg)
		if err != nil || c != 0xdeadbeef || s != 7 || ts != 1_234_567_890_123 {
			t.Fatalf("size %d: parse = %x %d %d %v", size, c, s, ts, err)
		}
	}
	if _, err := newPayloadLayout(MinMessageSize - 1); err == nil {
		t.Error("a size below the minimum must be refused")
	}
}

func TestPayloadDetectsDamage(t *testing.T) {
	for _, size := range []int{40, 1024} {
		l, _ := newPayloadLayout(size)
		good := append([]byte(nil), l.template...)
		l.fill(good, 1, 2, 3)
		for name, damage := range map[string]func([]byte) []byte{
			"truncated":          func(b []byte) []byte { return b[:len(b)-1] },
			"extended":           func(b []byte) []byte { return append(b, 'x') },
			"padding flipped":    func(b []byte) []byte { b[len(b)-3] ^= 1; return b },
			"field not hex":      func(b []byte) []byte { b[l.seqAt] = 'z'; return b },
			"separator replaced": func(b []byte) []byte { b[l.timeAt-1] ^= 1; return b },
		} {
			if name == "separator replaced" && size < jsonMinSize {
				continue // the compact form has no separators
			}
			msg := damage(append([]byte(nil), good...))
			if _, _, _, err := l.parse(msg); !errors.Is(err, errBadEcho) {
				t.Errorf("size %d, %s: err = %v, want errBadEcho", size, name, err)
			}
		}
	}
}
