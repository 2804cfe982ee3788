package loadtest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

// capturePprof fetches a CPU profile covering d from a Go proxy's admin
// endpoint (net/http/pprof under /debug/pprof/), then a heap profile, into
// dir/name-cpu.pprof and dir/name-heap.pprof. It returns at once; the
// function it returns waits for both and lists what went wrong.
func capturePprof(admin, dir, name string, d time.Duration) (wait func() []string) {
	done := make(chan []string, 1)
	go func() {
		var problems []string
		if err := os.MkdirAll(dir, 0o755); err != nil {
			done <- []string{fmt.Sprintf("-pprof: %v", err)}
			return
		}
		secs := max(int(d.Round(time.Second)/time.Second), 1)
		cpu := filepath.Join(dir, name+"-cpu.pprof")
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs)
		if err := fetchTo(url, cpu, d+30*time.Second); err != nil {
			problems = append(problems, fmt.Sprintf("-pprof: CPU profile: %v", err))
		}
		heap := filepath.Join(dir, name+"-heap.pprof")
		if err := fetchTo("http://"+admin+"/debug/pprof/heap", heap, 30*time.Second); err != nil {
			problems = append(problems, fmt.Sprintf("-pprof: heap profile: %v", err))
		}
		done <- problems
	}()
	return func() []string { return <-done }
}

func fetchTo(url, path string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// startSelfProfile profiles the load generator's own CPU until stop: the
// way to check that the client is not what limits a run.
func startSelfProfile(path string) (stop func(), err error) {
	if err := mkParent(path); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
