package loadtest

import (
	"fmt"
	"syscall"
	"time"
)

// procGroup is a set of processes measured as one: the proxy (one pid),
// nginx (its master and, found anew at each sample, its workers), or the
// backends (N pids). The zero value measures nothing.
type procGroup struct {
	roots    []int
	children bool // add the roots' children (nginx workers)
}

func (g procGroup) empty() bool { return len(g.roots) == 0 }

// usage is one reading of a group: CPU is cumulative, memory is a sum over
// the processes. HWM sums each process's own peak, which bounds the peak of
// the sum from above; for one process it is exact.
type usage struct {
	CPU   time.Duration
	RSS   uint64
	HWM   uint64
	Procs int
}

// sample reads every process of the group once. A root that is gone is an
// error (the proxy died); a child that is gone is skipped.
func (g procGroup) sample() (usage, error) {
	var u usage
	for _, root := range g.roots {
		pids := []int{root}
		if g.children {
			kids, err := readChildren(root)
			if err != nil {
				return usage{}, err
			}
			pids = append(pids, kids...)
		}
		for i, pid := range pids {
			st, err := readProcStat(pid)
			if err == nil {
				var m procMem
				if m, err = readProcMem(pid); err == nil {
					u.CPU += st.CPU()
					u.RSS += m.RSS
					u.HWM += m.HWM
					u.Procs++
					continue
				}
			}
			if i == 0 {
				return usage{}, fmt.Errorf("loadtest: process %d: %w", pid, err)
			}
		}
	}
	return u, nil
}

// selfCPU is the load generator's own CPU time (user + system), read with
// getrusage for microsecond resolution.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// snapshot is everything measured at one instant of a run.
type snapshot struct {
	At       time.Time
	Proxy    usage
	ProxyErr error
	Backends usage
	Self     time.Duration
	Machine  machineCPU
	Received int64 // echoes so far
	Sent     int64 // messages so far
	Open     int64 // sessions open now
}

// cores converts the CPU used between two readings into cores busy
// (1.0 = one core for the whole interval).
func cores(cpu time.Duration, over time.Duration) float64 {
	if over <= 0 {
		return 0
	}
	return float64(cpu) / float64(over)
}

// machineTaskCores is the cores spent in processes (user and system time)
// between two readings, over the elapsed time the readings cover.
func machineTaskCores(a, b machineCPU, cores int) float64 {
	if b.Total <= a.Total {
		return 0
	}
	return float64(b.Task-a.Task) / float64(b.Total-a.Total) * float64(cores)
}

// machineBusy is the share of all cores busy between two readings, 0..1.
func machineBusy(a, b machineCPU) float64 {
	if b.Total <= a.Total {
		return 0
	}
	return float64(b.Busy-a.Busy) / float64(b.Total-a.Total)
}
