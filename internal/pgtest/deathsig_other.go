//go:build !linux

package pgtest

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr) {}
