package pgcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// binaries are the PostgreSQL server programs of one installation.
type binaries struct {
	dir, initdb, pgctl, postgres string
}

// version is what `postgres --version` says, without its "postgres (PostgreSQL) " prefix.
func (b binaries) version(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, b.postgres, "--version").Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(out))
	if i := strings.Index(v, ") "); i >= 0 && strings.HasPrefix(v, "postgres") {
		v = v[i+2:]
	}
	return v
}

// major is the major version ("15", "9.6") of the binaries, or "".
func (b binaries) major(ctx context.Context) string {
	v, _, _ := strings.Cut(b.version(ctx), " ")
	parts := strings.SplitN(v, ".", 3)
	first := strings.TrimRightFunc(parts[0], func(r rune) bool { return r < '0' || r > '9' }) // "16beta1"
	n, err := strconv.Atoi(first)
	if err != nil {
		return ""
	}
	if n < 10 && len(parts) > 1 {
		return first + "." + parts[1]
	}
	return first
}

// binariesIn returns the binaries in dir when it has all of initdb, pg_ctl and postgres.
func binariesIn(dir string) (binaries, bool) {
	if dir == "" {
		return binaries{}, false
	}
	b := binaries{
		dir:      dir,
		initdb:   filepath.Join(dir, "initdb"),
		pgctl:    filepath.Join(dir, "pg_ctl"),
		postgres: filepath.Join(dir, "postgres"),
	}
	for _, p := range []string{b.initdb, b.pgctl, b.postgres} {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return binaries{}, false
		}
	}
	return b, true
}

// findBinaries looks for initdb, pg_ctl and postgres: only in override (or $ERPCTL_PG_BINDIR) when
// set; else in `pg_config --bindir`, the newest /usr/lib/postgresql/*/bin, then PATH. When dataDir
// holds a cluster, binaries of its major version are preferred.
func findBinaries(ctx context.Context, override, dataDir string) (binaries, error) {
	if override == "" {
		override = os.Getenv("ERPCTL_PG_BINDIR")
	}
	if override != "" {
		if b, ok := binariesIn(override); ok {
			return b, nil
		}
		return binaries{}, fmt.Errorf("%w (ERPCTL_PG_BINDIR %s lacks initdb, pg_ctl or postgres)", ErrNoPostgres, override)
	}

	var dirs []string
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output(); err == nil {
			dirs = append(dirs, strings.TrimSpace(string(out)))
		}
	}
	dirs = append(dirs, debianBinDirs()...)
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}

	var found []binaries
	seen := map[string]bool{}
	for _, d := range dirs {
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		if b, ok := binariesIn(d); ok {
			found = append(found, b)
		}
	}
	if len(found) == 0 {
		return binaries{}, fmt.Errorf("%w (looked in `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH)", ErrNoPostgres)
	}
	if want := readTrim(filepath.Join(dataDir, "PG_VERSION")); want != "" && len(found) > 1 {
		for _, b := range found {
			if b.major(ctx) == want {
				return b, nil
			}
		}
	}
	return found[0], nil
}

// debianBinDirs are /usr/lib/postgresql/*/bin, newest version first.
func debianBinDirs() []string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	key := func(p string) []int {
		var k []int
		for _, s := range strings.Split(filepath.Base(filepath.Dir(p)), ".") {
			n, _ := strconv.Atoi(s)
			k = append(k, n)
		}
		return k
	}
	sort.Slice(matches, func(i, j int) bool {
		a, b := key(matches[i]), key(matches[j])
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
	return matches
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
