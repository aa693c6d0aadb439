package servicetest

import "syscall"

// procAttr puts a service in its own process group (stopped as a group) and
// has the kernel kill it if the test binary dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
