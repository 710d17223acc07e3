//go:build !unix

package pgcluster

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
)

var errUnsupported = errors.New("the embedded PostgreSQL needs a Unix-like system; set ERPCTL_DATABASE_URL")

func lockFile(ctx context.Context, path string) (func(), error) { return nil, errUnsupported }

func sysProcAttr(ru *runAs) *syscall.SysProcAttr { return nil }

func pidExists(pid int) bool { return false }

func processAlive(pid int) bool { return false }

func isServerProcess(pid int, dataDir string) bool { return false }

func serverProcessesIn(dataDir string) ([]int, bool) { return nil, false }

func interruptProcess(pid int) error { return errUnsupported }

func fileOwner(fi fs.FileInfo) (uint32, uint32, bool) { return 0, 0, false }

func serverFiles() int { return 0 }
