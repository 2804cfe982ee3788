package proxyproto

import (
	"testing"
)

var benchHeaders = []struct {
	name  string
	input []byte
}{
	{"v1 TCP4", validHeader("v1 TCP4, the spec's example")},
	{"v1 TCP6 longest", validHeader("v1 TCP6 longest, 104 bytes")},
	{"v2 TCP4", validHeader("v2 PROXY TCP4")},
	{"v2 TCP6 with CRC32C", validHeader("v2 PROXY TCP6 with a CRC32C")},
}

// TestZeroAllocs pins that Parse does not allocate for a header, nor to
// say it needs more or that the bytes are not one: a loop parses every
// connection's first bytes.
func TestZeroAllocs(t *testing.T) {
	for _, bh := range benchHeaders {
		input := append(bh.input, trailer...)
		if allocs := testing.AllocsPerRun(100, func() { _, _, _ = Parse(input) }); allocs != 0 {
			t.Errorf("Parse(%s) allocates %.1f times", bh.name, allocs)
		}
		for _, k := range []int{1, len(bh.input) / 2, len(bh.input) - 1} {
			if allocs := testing.AllocsPerRun(100, func() { _, _, _ = Parse(input[:k]) }); allocs != 0 {
				t.Errorf("Parse(first %d bytes of %s) allocates %.1f times", k, bh.name, allocs)
			}
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = Parse(trailer) }); allocs != 0 {
		t.Errorf("Parse(an HTTP request) allocates %.1f times", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bh := range benchHeaders {
		b.Run(bh.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bh.input)))
			for b.Loop() {
				if _, _, err := Parse(bh.input); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
