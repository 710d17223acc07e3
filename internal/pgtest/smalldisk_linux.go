package pgtest

import (
	"fmt"
	"syscall"
)

func mountTmpfs(dir string, sizeMB int) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0755", sizeMB))
}

func unmount(dir string) error { return syscall.Unmount(dir, 0) }
