package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: sent %v, %v", sent, err)
	}

	path := filepath.Join(t.TempDir(), "notify.sock")
	c := listen(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	if sent, err := Notify(Ready + "\n" + Status("serving")); !sent || err != nil {
		t.Fatalf("sent %v, %v", sent, err)
	}
	if got := receive(t, c); got != "READY=1\nSTATUS=serving" {
		t.Fatalf("got %q", got)
	}

	// systemd's socket is usually abstract: "@/org/freedesktop/systemd1/notify".
	abstract := listen(t, "\x00wsgate-sdnotify-test-"+filepath.Base(t.TempDir()))
	t.Setenv("NOTIFY_SOCKET", "@"+abstract.LocalAddr().String()[1:])
	if sent, err := Notify(Stopping); !sent || err != nil {
		t.Fatalf("abstract: sent %v, %v", sent, err)
	}
	if got := receive(t, abstract); got != Stopping {
		t.Fatalf("abstract: got %q", got)
	}

	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if _, err := Notify(Ready); err == nil {
		t.Fatal("no error for a socket nobody listens on")
	}
}
