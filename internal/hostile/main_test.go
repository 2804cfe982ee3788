package hostile

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// gatewayBin is the gateway binary under test, set by TestMain.
var gatewayBin string

// reexecNofileEnv, when set in the environment, turns the test binary into
// a launcher: it lowers RLIMIT_NOFILE to the value and execs its arguments
// (the way to run the gateway under a descriptor limit without prlimit).
const reexecNofileEnv = "WSGATE_HOSTILE_REEXEC_NOFILE"

func TestMain(m *testing.M) {
	if v := os.Getenv(reexecNofileEnv); v != "" {
		reexecWithNofile(v) // never returns
	}
	flag.Parse()
	raiseNofile()
	bin, cleanup, err := buildGateway()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
	gatewayBin = bin
	code := m.Run()
	cleanup()
	if code == 0 {
		// Every peer, client, monitor and child-process reader must be gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "hostile: goroutines left behind by the suite:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// buildGateway builds ./cmd/wsgate with the race detector into a temporary
// directory, unless WSGATE_HOSTILE_BIN names a binary to use instead.
func buildGateway() (string, func(), error) {
	if bin := os.Getenv("WSGATE_HOSTILE_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", nil, fmt.Errorf("WSGATE_HOSTILE_BIN: %w", err)
		}
		return bin, func() {}, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "wsgate-hostile-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	bin := filepath.Join(dir, "wsgate")
	goTool := "go"
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-race", "-o", bin, "./cmd/wsgate")
	cmd.Dir = root
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build -race ./cmd/wsgate: %v\n%s", err, out)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "hostile: built %s in %v\n", bin, time.Since(start).Round(time.Millisecond))
	}
	return bin, cleanup, nil
}

// moduleRoot walks up from the working directory (internal/hostile when
// run by go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// raiseNofile lifts this process's soft descriptor limit to its hard limit:
// the connection flood opens a thousand sockets at once.
func raiseNofile() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// reexecWithNofile sets RLIMIT_NOFILE (soft and hard) to v and execs
// os.Args[1:], with the variable removed from the environment.
func reexecWithNofile(v string) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "hostile launcher: bad %s=%q or no command\n", reexecNofileEnv, v)
		os.Exit(125)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintln(os.Stderr, "hostile launcher: setrlimit:", err)
		os.Exit(125)
	}
	path, err := exec.LookPath(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile launcher:", err)
		os.Exit(127)
	}
	var env []string
	for _, kv := range os.Environ() {
		if len(kv) < len(reexecNofileEnv)+1 || kv[:len(reexecNofileEnv)+1] != reexecNofileEnv+"=" {
			env = append(env, kv)
		}
	}
	err = syscall.Exec(path, os.Args[1:], env)
	fmt.Fprintln(os.Stderr, "hostile launcher: exec:", err)
	os.Exit(126)
}
