package reconcile_test

import (
	"os"
	"syscall"
)

func syscallKillHUP() error { return syscall.Kill(os.Getpid(), syscall.SIGHUP) }
