package pgtest

import "syscall"

// setParentDeathSignal stops the test's PgBouncer with the test binary, also when a timeout or a
// kill -9 ends it before Main can.
func setParentDeathSignal(a *syscall.SysProcAttr) {
	if a != nil {
		a.Pdeathsig = syscall.SIGTERM
	}
}
