package tlsinterop

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/server"
)

// pythonResult is what testdata/ws_client.py prints.
type pythonResult struct {
	Websockets string   `json:"websockets"`
	Python     string   `json:"python"`
	SSL        string   `json:"ssl"`
	TLS        string   `json:"tls"`
	Echoes     []string `json:"echoes"`
	CloseCode  int      `json:"close_code"`
	Error      string   `json:"error"`
}

// needPython is Debian's python3 with python3-websockets (a python3
// earlier in PATH, pyenv's say, does not see Debian's packages).
func needPython(t testing.TB) string {
	t.Helper()
	py, err := lookTool("WSGATE_INTEROP_PYTHON", "/usr/bin/python3")
	if err == nil {
		if out, ierr := exec.Command(py, "-c", "import websockets").CombinedOutput(); ierr != nil {
			err = errors.New(strings.TrimSpace(string(out)))
		}
	}
	need(t, "python3 with the websockets package (python3-websockets)", err)
	return py
}

// TestPythonWebsockets: the `websockets` package over TLS 1.2 and 1.3,
// trusting the test CA through an ssl context: a text and a binary
// message, a text message in five fragments, close 1000.
func TestPythonWebsockets(t *testing.T) {
	t.Parallel()
	py := needPython(t)
	p := newPKI(t)
	srv := startServer(t, server.Config{}, p)
	for _, version := range []string{"1.2", "1.3"} {
		pr := startPeer(t, 30*time.Second, nil, py, testdata(t, "ws_client.py"), "wss://"+srv.TLSAddr()+"/python", p.caFile, version)
		exitErr := pr.exit(t, 25*time.Second)
		lines := strings.Split(strings.TrimSpace(pr.out.String()), "\n")
		var res pythonResult
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
			t.Fatalf("python %s: no result (%v, exit %v)\n%s", version, err, exitErr, pr.describe())
		}
		if exitErr != nil || res.Error != "" {
			t.Fatalf("python TLS %s failed (exit %v): %s\n%s", version, exitErr, res.Error, pr.describe())
		}
		if res.TLS != "TLSv"+version || res.CloseCode != 1000 || len(res.Echoes) != 3 {
			t.Errorf("python TLS %s: %+v", version, res)
		}
		if s := pr.err.String(); s != "" {
			t.Logf("python TLS %s stderr:\n%s", version, s)
		}
		t.Logf("python %s, websockets %s, %s, %s: echoes %v, close %d", res.Python, res.Websockets, res.SSL, res.TLS, res.Echoes, res.CloseCode)
	}
	waitCounts(t, srv.Stats(), nil, counts{
		"accepted": 2, "tls_handshakes": 2, "upgraded": 2, "closed/client_close": 2,
		// text, binary, the five fragments and an empty final one
		// (websockets ends a fragmented message so), close; the echo
		// sends each message back whole.
		"frames_in": 2 * (1 + 1 + 6 + 1), "frames_out": 2 * 4,
	})
}
