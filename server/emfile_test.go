package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/conformance"
)

// The descriptor-exhaustion test runs the server in a child process (this
// test binary, re-executed) under a small open-file limit, so the limit
// does not touch the tests running here.
const emfileChildEnv = "WSGATE_TEST_EMFILE_CHILD"

// TestMain lets the test binary act as that child.
func TestMain(m *testing.M) {
	if os.Getenv(emfileChildEnv) != "" {
		os.Exit(runEMFILEChild())
	}
	os.Exit(m.Run())
}

// runEMFILEChild serves echo under a 64-descriptor limit with MaxConns far
// above it, prints its address, and exits when stdin closes: 0 if the
// server stayed healthy, 1 if it failed.
func runEMFILEChild() int {
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		return 2
	}
	srv, err := New(Config{Addr: "127.0.0.1:0", Loops: 2, MaxConns: 1000, HandshakeTimeout: 2 * time.Second})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Println("start:", err)
		return 2
	}
	fmt.Println("addr", srv.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	failed := srv.Err()
	fmt.Println("emfile", srv.Stats().AcceptEMFILE.Load(), "err", failed)
	srv.Stop()
	if failed != nil {
		return 1
	}
	return 0
}

// TestDescriptorExhaustionKeepsServing is the regression test for the
// hardening issue's defect 2: gnet treated EMFILE on accept as fatal, so a
// flood of connections past the open-file limit stopped the engine for
// good while the process lived on. Now the flood is refused (closed at
// once) and the server serves again as soon as descriptors are free.
func TestDescriptorExhaustionKeepsServing(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	out := bufio.NewScanner(stdout)
	if !out.Scan() || !strings.HasPrefix(out.Text(), "addr ") {
		t.Fatalf("child: %q", out.Text())
	}
	addr := strings.TrimPrefix(out.Text(), "addr ")

	// 200 connections against 64 descriptors: most cannot be served.
	var flood []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			continue // the listen queue may be full: that is a refusal too
		}
		flood = append(flood, c)
	}
	// Each flood connection ends by itself (refused at once, or at the
	// handshake timeout), none is left hanging.
	for _, c := range flood {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("flood connection: %v", err)
		}
		_ = c.Close()
	}

	// Descriptors are back: a session works.
	waitFor(t, 10*time.Second, "a session after the flood", func() bool {
		return tryEcho(addr) == nil
	})
	_ = stdin.Close()
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child after the flood: %v (%s)", err, rest)
	}
	t.Logf("child: %s", strings.TrimSpace(string(rest)))
	if !strings.Contains(string(rest), "err <nil>") {
		t.Fatalf("child: %s", rest)
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// tryEcho opens a session, echoes one message and closes.
func tryEcho(addr string) error {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	req := conformance.NewRequest(addr, "/")
	if _, err := nc.Write(req.Bytes()); err != nil {
		return err
	}
	r := bufio.NewReader(nc)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		return fmt.Errorf("status %q, %v", status, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
	}
	if _, err := nc.Write([]byte{0x81, 0x82, 0, 0, 0, 0, 'h', 'i'}); err != nil {
		return err
	}
	var frame [4]byte
	if _, err := io.ReadFull(r, frame[:]); err != nil {
		return err
	}
	if string(frame[2:]) != "hi" {
		return fmt.Errorf("echo %q", frame)
	}
	return nil
}
