package jwtauth

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestVerifyWhileReloading runs Verify on several goroutines, as the event
// loops will, while another goroutine swaps the key file between an ES256
// key and an HMAC secret and reloads. Every answer must be one a single
// key could give: accepted, or refused for its alg or signature, never
// anything in between. Run it with -race.
func TestVerifyWhileReloading(t *testing.T) {
	keys(t)
	path := writeKey(t, t.TempDir(), "key", esTest.keyFile)
	v, err := New(Options{KeyFile: path, Audience: "wsgate", Issuer: "https://issuer.test", Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	tokens := []string{
		token(hdr(AlgES256), good(), esTest.sign),
		token(hdr(AlgHS256), good(), hsTest.sign),
		token(hdr(AlgES256), good(), esTest2.sign), // never valid
	}
	const reloads = 200
	var (
		done     atomic.Bool
		accepted [3]atomic.Int64
		wg       sync.WaitGroup
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load() || i < 50; i++ {
				which := (g + i) % len(tokens)
				c, err := v.Verify(tokens[which])
				switch Reason(err) {
				case "":
					if c.Subject != "user-42" {
						t.Errorf("accepted with claims %+v", c)
						return
					}
					accepted[which].Add(1)
				case "algorithm", "signature":
				default:
					t.Errorf("token %d: %v", which, err)
					return
				}
			}
		}()
	}
	for i := 0; i < reloads; i++ {
		next := esTest.keyFile
		if i%2 == 0 {
			next = hsTest.keyFile
		}
		replaceKey(t, path, next)
		if err := v.Reload(); err != nil {
			t.Error(err)
			break
		}
	}
	done.Store(true)
	wg.Wait()
	if v.Reloads.Load() != reloads || v.ReloadFailures.Load() != 0 {
		t.Errorf("Reloads %d, ReloadFailures %d", v.Reloads.Load(), v.ReloadFailures.Load())
	}
	if accepted[2].Load() != 0 {
		t.Errorf("a token signed by no key in force was accepted %d times", accepted[2].Load())
	}
	// Both keys were in force at some point; which tokens passed while
	// each was depends on scheduling, so only the final state is checked.
	if v.Algorithm() != AlgES256 {
		t.Errorf("final algorithm %s, want the last file's ES256", v.Algorithm())
	}
	if _, err := v.Verify(tokens[0]); err != nil {
		t.Errorf("after the last reload: %v", err)
	}
}
