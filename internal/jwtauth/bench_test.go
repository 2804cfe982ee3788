package jwtauth

import (
	"testing"
)

// BenchmarkVerify measures an accepted token per algorithm, and the
// refusals an attacker can make cheaply: a bad signature (the whole check
// runs) and a wrong alg (refused before any signature work).
func BenchmarkVerify(b *testing.B) {
	keys(b)
	for _, k := range []testKey{esTest, rsTest, hsTest} {
		v := newVerifier(b, k)
		goodToken := token(hdr(k.alg), good(), k.sign)
		for _, bc := range []struct {
			name, token string
			accept      bool
		}{
			{"accepted", goodToken, true},
			{"bad_signature", flipLastBit(goodToken), false},
			{"alg_none", token(hdr("none"), good(), k.sign), false},
		} {
			b.Run(k.alg+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(bc.token)))
				for b.Loop() {
					if _, err := v.Verify(bc.token); (err == nil) != bc.accept {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkVerifyParallel is Verify on every P at once, as the event
// loops call it: the pooled scratch must not become a point of contention.
func BenchmarkVerifyParallel(b *testing.B) {
	keys(b)
	v := newVerifier(b, hsTest)
	tok := token(hdr(AlgHS256), good(), hsTest.sign)
	b.ReportAllocs()
	b.SetBytes(int64(len(tok)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTokenFrom(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		TokenFrom("", "room=lobby&access_token=eyJhbGciOiJIUzI1NiJ9.e30.c2ln&v=2")
	}
}
