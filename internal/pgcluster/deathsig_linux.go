package pgcluster

import "syscall"

// setParentDeathSignal stops a throwaway PgBouncer with the process that started it, also when a
// test timeout or a kill -9 ends that process before it can stop it.
func setParentDeathSignal(a *syscall.SysProcAttr) {
	if a != nil {
		a.Pdeathsig = syscall.SIGTERM
	}
}
