// Package sdnotify tells systemd (Type=notify units) how the service is
// doing: READY=1 once it serves, STOPPING=1 when it starts to drain,
// STATUS= lines in between. It speaks the datagram protocol of
// sd_notify(3) itself (no cgo, no libsystemd) and owns nothing but the
// socket it opens per message.
package sdnotify

import (
	"net"
	"os"
)

// Messages a service sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Notify sends state (one or more "KEY=value" lines) to the service
// manager named by $NOTIFY_SOCKET. Without it (not run by systemd, or
// not Type=notify) it does nothing and returns false.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' { // abstract namespace
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}

// Status is a STATUS= line: what `systemctl status` shows.
func Status(text string) string { return "STATUS=" + text }
