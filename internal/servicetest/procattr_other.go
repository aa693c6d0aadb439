//go:build !linux

package servicetest

import "syscall"

// procAttr puts a service in its own process group (stopped as a group).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
