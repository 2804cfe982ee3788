package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which the Linux ABI fixes at 100 on every architecture Go supports
// (sysconf(_SC_CLK_TCK) would need cgo to ask).
const clockTick = 10 * time.Millisecond

// errProcFormat marks /proc text we could not parse.
var errProcFormat = errors.New("loadtest: unexpected /proc format")

// procStat is what we read from /proc/PID/stat.
type procStat struct {
	PPID  int
	Utime uint64 // clock ticks in user mode, all threads, living and exited
	Stime uint64 // clock ticks in kernel mode, idem
}

// CPU is the process's total CPU time.
func (s procStat) CPU() time.Duration { return time.Duration(s.Utime+s.Stime) * clockTick }

// parseProcStat parses the one line of /proc/PID/stat. The command name
// (field 2) is in parentheses and may itself hold spaces and parentheses,
// so fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("%w: stat has no command name", errProcFormat)
	}
	// After ") " come field 3 (state) onwards; ppid is field 4, utime 14, stime 15.
	f := bytes.Fields(b[end+1:])
	const first = 3
	if len(f) < 15-first+1 {
		return procStat{}, fmt.Errorf("%w: stat has %d fields after the name", errProcFormat, len(f))
	}
	var s procStat
	var err error
	if s.PPID, err = strconv.Atoi(string(f[4-first])); err != nil {
		return procStat{}, fmt.Errorf("%w: ppid: %w", errProcFormat, err)
	}
	if s.Utime, err = strconv.ParseUint(string(f[14-first]), 10, 64); err != nil {
		return procStat{}, fmt.Errorf("%w: utime: %w", errProcFormat, err)
	}
	if s.Stime, err = strconv.ParseUint(string(f[15-first]), 10, 64); err != nil {
		return procStat{}, fmt.Errorf("%w: stime: %w", errProcFormat, err)
	}
	return s, nil
}

// procMem is what we read from /proc/PID/status, in bytes.
type procMem struct {
	RSS     uint64 // VmRSS: resident now
	HWM     uint64 // VmHWM: peak resident since start
	Threads int
}

// parseProcStatus picks VmRSS, VmHWM and Threads out of /proc/PID/status.
// A kernel thread or a zombie has no Vm lines; that is an error here
// because we only measure live user processes.
func parseProcStatus(b []byte) (procMem, error) {
	var m procMem
	var haveRSS, haveHWM bool
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		switch string(key) {
		case "VmRSS", "VmHWM":
			kb, err := parseKB(val)
			if err != nil {
				return procMem{}, fmt.Errorf("%w: %s: %w", errProcFormat, key, err)
			}
			if key[2] == 'R' {
				m.RSS, haveRSS = kb*1024, true
			} else {
				m.HWM, haveHWM = kb*1024, true
			}
		case "Threads":
			n, err := strconv.Atoi(string(bytes.TrimSpace(val)))
			if err != nil {
				return procMem{}, fmt.Errorf("%w: Threads: %w", errProcFormat, err)
			}
			m.Threads = n
		}
	}
	if !haveRSS || !haveHWM {
		return procMem{}, fmt.Errorf("%w: status has no VmRSS/VmHWM (kernel thread or zombie?)", errProcFormat)
	}
	return m, nil
}

// parseKB parses "   1234 kB".
func parseKB(val []byte) (uint64, error) {
	f := bytes.Fields(val)
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0, fmt.Errorf("want \"N kB\", got %q", bytes.TrimSpace(val))
	}
	return strconv.ParseUint(string(f[0]), 10, 64)
}

// machineCPU is the first line of /proc/stat, in clock ticks.
type machineCPU struct {
	Busy, Total uint64
	// Task is user, nice and system time: what processes are charged for.
	// Busy adds the interrupt and softirq time no process is charged for
	// (loopback TCP delivery is partly softirq work).
	Task uint64
}

// parseMachineCPU reads the aggregate "cpu" line of /proc/stat. Busy is
// everything but idle, iowait and steal (time the hypervisor gave away).
func parseMachineCPU(b []byte) (machineCPU, error) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return machineCPU{}, fmt.Errorf("%w: /proc/stat does not start with the cpu line", errProcFormat)
	}
	var m machineCPU
	for i, field := range f[1:] {
		v, err := strconv.ParseUint(string(field), 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("%w: /proc/stat cpu field %d: %w", errProcFormat, i+1, err)
		}
		// Fields 9 and 10 (guest, guest_nice) are already counted in user and nice.
		if i >= 8 {
			break
		}
		m.Total += v
		if i != 3 && i != 4 && i != 7 { // idle, iowait, steal
			m.Busy += v
		}
		if i <= 2 { // user, nice, system
			m.Task += v
		}
	}
	return m, nil
}

// parseChildren parses /proc/PID/task/TID/children: space-separated pids.
func parseChildren(b []byte) ([]int, error) {
	var pids []int
	for _, f := range bytes.Fields(b) {
		pid, err := strconv.Atoi(string(f))
		if err != nil {
			return nil, fmt.Errorf("%w: children: %w", errProcFormat, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// procRoot is /proc; tests point it at fixtures.
var procRoot = "/proc"

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

func readProcMem(pid int) (procMem, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return procMem{}, err
	}
	return parseProcStatus(b)
}

func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return machineCPU{}, err
	}
	return parseMachineCPU(b)
}

// readChildren lists the children of every thread of pid.
func readChildren(pid int) ([]int, error) {
	tasks, err := filepath.Glob(filepath.Join(procRoot, strconv.Itoa(pid), "task", "*", "children"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended meanwhile
		}
		pids, err := parseChildren(b)
		if err != nil {
			return nil, err
		}
		out = append(out, pids...)
	}
	return out, nil
}
