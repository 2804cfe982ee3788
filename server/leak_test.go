package server

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestStopLeavesNothingBehind runs sessions, some still open at stop, and
// checks that stopping the server leaves no goroutine and no descriptor.
func TestStopLeavesNothingBehind(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	fdsBefore := testutil.OpenFDs(t)

	srv, err := New(Config{Addr: "127.0.0.1:0", TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var clients []*websocket.Conn
	for i := 0; i < 20; i++ {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			_ = c.Close() // half end before the stop, half are cut by it
		} else {
			clients = append(clients, c)
		}
	}
	srv.Stop()
	for _, c := range clients {
		_ = c.Close()
	}
	if got := srv.Stats().Open.Load(); got != 0 {
		t.Errorf("Stats.Open = %d after stop", got)
	}
	goleak.VerifyNone(t, testutil.IgnoreGnetWorkers(ignore)...)
	testutil.CheckFor(t, 5*time.Second, func() error {
		if got := testutil.OpenFDs(t); got != fdsBefore {
			return fmt.Errorf("open descriptors: %d before, %d after stop", fdsBefore, got)
		}
		return nil
	})
}

// TestStartRemovesStaleAnchors: a process killed while starting leaves its
// anchor directory behind; the next start removes it, and its own is gone
// once it listens.
func TestStartRemovesStaleAnchors(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	stale := filepath.Join(os.TempDir(), fmt.Sprintf("wsgate-anchor-%d-test", dead.Process.Pid))
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(stale)
	startTestServer(t, Config{})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale anchor directory still there: %v", err)
	}
	mine, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("wsgate-anchor-%d-*", os.Getpid())))
	if len(mine) != 0 {
		t.Fatalf("anchor directories left while serving: %v", mine)
	}
}
