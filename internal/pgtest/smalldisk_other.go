//go:build !linux

package pgtest

import "errors"

func mountTmpfs(string, int) error { return errors.New("tmpfs is Linux's") }

func unmount(string) error { return nil }
