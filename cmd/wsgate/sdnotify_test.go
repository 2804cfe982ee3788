package main

import (
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify runs the gateway mode as systemd would with
// Type=notify: READY=1 once its pools are up, STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	// A SIGTERM sent before the gateway listens for it must not end the
	// test binary.
	hold := make(chan os.Signal, 1)
	signal.Notify(hold, syscall.SIGTERM)
	defer signal.Stop(hold)

	done := make(chan int, 1)
	go func() {
		done <- run([]string{"-listen", "127.0.0.1:0", "-loops", "1", "-backend", startEcho(t), "-pool-size", "3", "-log-level", "error"})
	}()
	read := func() string {
		_ = l.SetReadDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 1024)
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
		return string(buf[:n])
	}
	if msg := read(); !strings.HasPrefix(msg, "READY=1\nSTATUS=serving on 127.0.0.1:") {
		t.Fatalf("first notification %q, want READY=1 with a status", msg)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if msg := read(); msg != "STOPPING=1" {
		t.Fatalf("on SIGTERM: %q, want STOPPING=1", msg)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway did not stop")
	}
}
