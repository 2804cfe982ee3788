package tlsinterop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/server"
)

// nodeResult is what testdata/ws_client.js prints.
type nodeResult struct {
	Version     string `json:"version"`
	Node        string `json:"node"`
	TLS         string `json:"tls"`
	Authorized  bool   `json:"authorized"`
	CloseCode   int    `json:"closeCode"`
	CloseReason string `json:"closeReason"`
	Error       string `json:"error"`
	Echoes      []struct {
		Name  string `json:"name"`
		Bytes int    `json:"bytes"`
	} `json:"echoes"`
}

// TestNodeWS: Node's `ws` package (installed by make interop-deps) over
// TLS 1.2 and 1.3, trusting the test CA through its `ca` option: a text
// and a binary message, a 1 MiB binary message sent as 16 fragments of
// 64 KiB (the server's default message limit, exactly), close 1000.
func TestNodeWS(t *testing.T) {
	t.Parallel()
	node, modules := needNode(t)
	p := newPKI(t)
	srv := startServer(t, server.Config{}, p)
	const fragment = 64 << 10
	for _, version := range []string{"TLSv1.2", "TLSv1.3"} {
		runNodeClient(t, node, modules, "wss://"+srv.TLSAddr()+"/node", p.caFile, fragment, version)
	}
	waitCounts(t, srv.Stats(), nil, counts{
		"accepted": 2, "tls_handshakes": 2, "upgraded": 2, "closed/client_close": 2,
		// text, binary, the fragments, close; the echo sends each
		// message back whole.
		"frames_in": 2 * (1 + 1 + (1<<20)/fragment + 1), "frames_out": 2 * 4,
		"bytes_in": 2 * int64(len("héllo from node")+300+1<<20+len("\x03\xe8bye")),
	})
}

// TestNodeWSThroughGateway: the same client through the gateway, in
// front of an echo backend: the fragments are relayed to the backend as
// they come, and its whole message back.
func TestNodeWSThroughGateway(t *testing.T) {
	t.Parallel()
	node, modules := needNode(t)
	p := newPKI(t)
	gw, _ := startGateway(t, p)
	const fragment = 64 << 10
	runNodeClient(t, node, modules, "wss://"+gw.Server.TLSAddr()+"/node", p.caFile, fragment, "TLSv1.3")
	waitCounts(t, gw.Server.Stats(), nil, counts{
		"accepted": 1, "tls_handshakes": 1, "upgraded": 1, "closed/client_close": 1,
		"frames_in": 1 + 1 + (1<<20)/fragment + 1,
	})
}

func needNode(t testing.TB) (node, modules string) {
	t.Helper()
	node, err := lookTool("WSGATE_INTEROP_NODE", "node")
	need(t, "node", err)
	modules = filepath.Join(interopCache(), "node_modules")
	_, err = os.Stat(filepath.Join(modules, "ws", "package.json"))
	need(t, "the npm package ws", err)
	return node, modules
}

// runNodeClient runs testdata/ws_client.js against url and checks what it
// printed.
func runNodeClient(t testing.TB, node, modules, url, caFile string, fragment int, version string) {
	t.Helper()
	pr := startPeer(t, 30*time.Second, []string{"NODE_PATH=" + modules}, node,
		testdata(t, "ws_client.js"), url, caFile, strconv.Itoa(fragment), version)
	exitErr := pr.exit(t, 25*time.Second)
	lines := strings.Split(strings.TrimSpace(pr.out.String()), "\n")
	var res nodeResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("node %s: no result (%v, exit %v)\n%s", version, err, exitErr, pr.describe())
	}
	if exitErr != nil || res.Error != "" {
		t.Fatalf("node %s failed (exit %v): %s\n%s", version, exitErr, res.Error, pr.describe())
	}
	if res.TLS != version || !res.Authorized || res.CloseCode != 1000 || len(res.Echoes) != 3 || res.Echoes[2].Bytes != 1<<20 {
		t.Errorf("node %s: %+v", version, res)
	}
	t.Logf("node %s, ws %s, %s: %d echoes, close %d", res.Node, res.Version, res.TLS, len(res.Echoes), res.CloseCode)
}
