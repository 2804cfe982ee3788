package loadtest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A real /proc/PID/stat line of a Go program, and one whose command name
// holds spaces and parentheses (a process may name itself anything).
const (
	statGo    = "4242 (wsgate) S 4200 4242 4200 0 -1 4194560 2387 0 0 0 137 42 0 0 20 0 7 0 123456 1262088192 3711 18446744073709551615 4194304 7289949 140724489216784 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0 9387904 9470624 29130752 140724489220975 140724489221012 140724489221012 140724489224169 0\n"
	statWeird = "77 (my (odd) proc name) R 1 77 77 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 1 0 99 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
)

const statusGo = `Name:	wsgate
Umask:	0022
State:	S (sleeping)
Tgid:	4242
Pid:	4242
PPid:	4200
FDSize:	64
VmPeak:	 1232508 kB
VmSize:	 1232508 kB
VmLck:	       0 kB
VmHWM:	   48812 kB
VmRSS:	   14844 kB
RssAnon:	    8192 kB
RssFile:	    6652 kB
Threads:	7
SigQ:	0/94587
`

func TestParseProcStat(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want procStat
	}{
		{"go program", statGo, procStat{PPID: 4200, Utime: 137, Stime: 42}},
		{"name with spaces and parens", statWeird, procStat{PPID: 1, Utime: 5, Stime: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	if got, _ := parseProcStat([]byte(statGo)); got.CPU() != 179*10*time.Millisecond {
		t.Errorf("CPU() = %v, want 1.79s (ticks of 10 ms)", got.CPU())
	}
	for name, bad := range map[string]string{
		"empty":          "",
		"no name":        "4242 wsgate S 1 2 3",
		"truncated":      "4242 (wsgate) S 4200 4242",
		"utime not a nb": "4242 (wsgate) S 4200 4242 4200 0 -1 4194560 2387 0 0 0 x 42 0",
	} {
		if _, err := parseProcStat([]byte(bad)); !errors.Is(err, errProcFormat) {
			t.Errorf("%s: err = %v, want errProcFormat", name, err)
		}
	}
}

func TestParseProcStatus(t *testing.T) {
	got, err := parseProcStatus([]byte(statusGo))
	if err != nil {
		t.Fatal(err)
	}
	want := procMem{RSS: 14844 * 1024, HWM: 48812 * 1024, Threads: 7}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// No trailing newline still parses.
	if _, err := parseProcStatus([]byte("VmHWM:\t1 kB\nVmRSS:\t1 kB")); err != nil {
		t.Errorf("no final newline: %v", err)
	}
	for name, bad := range map[string]string{
		"kernel thread, no Vm lines": "Name:\tkthreadd\nThreads:\t1\n",
		"unit is not kB":             "VmHWM:\t1 MB\nVmRSS:\t1 kB\n",
		"not a number":               "VmHWM:\tlots kB\nVmRSS:\t1 kB\n",
	} {
		if _, err := parseProcStatus([]byte(bad)); !errors.Is(err, errProcFormat) {
			t.Errorf("%s: err = %v, want errProcFormat", name, err)
		}
	}
}

func TestParseMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	in := "cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 50 2 25 400 10 1 1 5 3 0\n"
	got, err := parseMachineCPU([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	// Busy leaves out idle, iowait and steal; guest is inside user already.
	if want := (machineCPU{Busy: 100 + 5 + 50 + 3 + 2, Total: 100 + 5 + 50 + 800 + 20 + 3 + 2 + 10, Task: 155}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	later := machineCPU{Busy: got.Busy + 150, Total: got.Total + 200, Task: got.Task + 100}
	if b := machineBusy(got, later); b != 0.75 {
		t.Errorf("busy = %v, want 0.75", b)
	}
	if c := machineTaskCores(got, later, 2); c != 1 {
		t.Errorf("task cores = %v, want 1 (half of 2 cores)", c)
	}
	if _, err := parseMachineCPU([]byte("intr 1 2 3\n")); !errors.Is(err, errProcFormat) {
		t.Errorf("err = %v, want errProcFormat", err)
	}
}

func TestParseChildren(t *testing.T) {
	got, err := parseChildren([]byte("101 102 \n"))
	if err != nil || len(got) != 2 || got[0] != 101 || got[1] != 102 {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := parseChildren(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v, %v", got, err)
	}
}

// TestProcGroupSumsChildren reads a fixture /proc: nginx's master and two
// workers are summed, and a worker that vanished is skipped.
func TestProcGroupSumsChildren(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	proc := func(pid, ppid string, utime, stime string, rssKB, hwmKB string) {
		write(pid+"/stat", pid+" (nginx) S "+ppid+" 1 1 0 -1 0 0 0 0 0 "+utime+" "+stime+" 0 0 20 0 1 0 1 1 1\n")
		write(pid+"/status", "VmHWM:\t"+hwmKB+" kB\nVmRSS:\t"+rssKB+" kB\nThreads:\t1\n")
	}
	proc("10", "1", "100", "50", "2000", "3000")
	proc("11", "10", "300", "100", "5000", "6000")
	proc("12", "10", "200", "100", "4000", "4500")
	write("10/task/10/children", "11 12 13") // 13 is gone
	old := procRoot
	procRoot = root
	defer func() { procRoot = old }()

	u, err := procGroup{roots: []int{10}, children: true}.sample()
	if err != nil {
		t.Fatal(err)
	}
	want := usage{CPU: 850 * clockTick, RSS: 11000 * 1024, HWM: 13500 * 1024, Procs: 3}
	if u != want {
		t.Fatalf("got %+v, want %+v", u, want)
	}
	if _, err := (procGroup{roots: []int{99}}).sample(); err == nil {
		t.Error("a missing root must be an error: the proxy died")
	}
}
