package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildErpctl builds ./cmd/erpctl of the module erpbench runs in into dir, once.
func buildErpctl(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not run inside the erpctl module (run it as `go run ./cmd/erpbench` from the repository)")
	}
	bin := filepath.Join(dir, "erpctl")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/erpctl")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/erpctl: %w: %s", err, firstLines(string(out), 3))
	}
	return bin, nil
}

// erpctlCmd is the built erpctl with the bench's database and modules dir, and no colour.
func (b *bench) erpctlCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.erpctl,
		append([]string{"--database-url", b.url, "--modules-dir", b.modulesDir}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	return cmd
}

// runErpctl runs erpctl and returns its stdout, or an error with its stderr.
func (b *bench) runErpctl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := b.erpctlCmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("erpctl %s: %w: %s", strings.Join(args, " "), err, firstLines(stderr.String(), 3))
	}
	return stdout.Bytes(), nil
}

// abbrev cuts s to about n characters.
func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, " / ")
}
