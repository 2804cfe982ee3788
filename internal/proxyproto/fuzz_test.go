package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Seed corpora beyond the f.Add calls live in testdata/fuzz/FuzzParse/.

// FuzzParse checks, for any input, that Parse does not panic and answers
// consistently: a header's length fits the input, re-parsing exactly the
// header gives the same, its strict prefixes need more; ErrNeedMore only
// below MaxLen; and Read, over the same bytes, agrees and leaves exactly
// the bytes after the header unread.
func FuzzParse(f *testing.F) {
	for _, tc := range validHeaders {
		f.Add(tc.input)
		f.Add(append(bytes.Clone(tc.input), trailer...))
	}
	for _, tc := range malformedHeaders {
		f.Add(tc.input)
	}
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01})

	f.Fuzz(func(t *testing.T, p []byte) {
		h, n, err := Parse(p)
		switch {
		case err == nil:
			if n <= 0 || n > len(p) || n > MaxLen {
				t.Fatalf("Parse = %+v, n=%d of %d bytes", h, n, len(p))
			}
			if h.Version != 1 && h.Version != 2 {
				t.Fatalf("version %d", h.Version)
			}
			if h.Source.IsValid() != h.Destination.IsValid() || (h.Command == CommandLocal && !h.Local()) {
				t.Fatalf("inconsistent header %+v", h)
			}
			again, n2, err2 := Parse(p[:n])
			if err2 != nil || again != h || n2 != n {
				t.Fatalf("re-parsing the header's %d bytes: %+v, %d, %v; first %+v", n, again, n2, err2, h)
			}
			if _, _, err := Parse(p[:n-1]); !errors.Is(err, ErrNeedMore) {
				t.Fatalf("all of the header but its last byte: %v", err)
			}
			if n <= 128 {
				for k := range n {
					if _, _, err := Parse(p[:k]); !errors.Is(err, ErrNeedMore) {
						t.Fatalf("first %d bytes of a %d-byte header: %v", k, n, err)
					}
				}
			}
		case errors.Is(err, ErrNeedMore):
			if n != 0 || len(p) >= MaxLen {
				t.Fatalf("ErrNeedMore with n=%d at %d bytes", n, len(p))
			}
		case err == ErrNotProxy, errors.Is(err, ErrMalformed):
			if n != 0 {
				t.Fatalf("%v with n=%d", err, n)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}

		src := bytes.NewReader(p)
		rh, rerr := Read(src)
		switch {
		case err == nil:
			if rerr != nil || rh != h || src.Len() != len(p)-n {
				t.Fatalf("Read = %+v, %v, %d bytes left; Parse = %+v, %d of %d", rh, rerr, src.Len(), h, n, len(p))
			}
		case errors.Is(err, ErrNeedMore):
			if !errors.Is(rerr, io.ErrUnexpectedEOF) && !(len(p) == 0 && errors.Is(rerr, io.EOF)) {
				t.Fatalf("Read of a cut header = %v", rerr)
			}
		case err == ErrNotProxy:
			if rerr != ErrNotProxy {
				t.Fatalf("Read = %v; Parse: %v", rerr, err)
			}
		default:
			// Read may judge a shorter prefix, malformed already.
			if !errors.Is(rerr, ErrMalformed) {
				t.Fatalf("Read = %v; Parse: %v", rerr, err)
			}
		}
	})
}
