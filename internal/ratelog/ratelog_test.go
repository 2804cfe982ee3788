package ratelog

import (
	"testing"
	"time"
)

func TestOneLinePerSecond(t *testing.T) {
	var l Limiter
	now := time.Now().UnixNano()
	if ok, _ := l.Allow(now); !ok {
		t.Fatal("the first line was held back")
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allow(now + int64(i)*int64(100*time.Millisecond)); ok {
			t.Fatal("a second line within the second")
		}
	}
	if ok, dropped := l.Allow(now + int64(time.Second)); !ok || dropped != 5 {
		t.Fatalf("after a second: %v, %d left out (want 5)", ok, dropped)
	}
}
