package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// profiler writes CPU and allocation profiles of the erpbench process (the in-process daemon,
// its pools and the data API handler) around each wrk run of the data API scenario and each
// pass of the module evolution scenario, into BENCH_PROFILE's directory; off when it is unset,
// so that no run is slowed by it unasked.
//
// Each run leaves cpu-NAME.pprof and allocs-NAME.pprof, the second the allocations made during
// the run alone (a diff against the profile taken at its start):
//
//	go tool pprof -top cpu-get-page-of-20.pprof
//	go tool pprof -top -sample_index=alloc_space -diff_base allocs-NAME-start.pprof allocs-NAME.pprof
type profiler struct{ dir string }

func profilerFromEnv() (*profiler, error) {
	dir := os.Getenv("BENCH_PROFILE")
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("BENCH_PROFILE=%q: %w", dir, err)
	}
	return &profiler{dir: dir}, nil
}

// start begins the profiles of the run name and returns what ends them; a nil profiler does
// nothing.
func (p *profiler) start(name string) (stop func() error, err error) {
	if p == nil {
		return func() error { return nil }, nil
	}
	base := strings.ReplaceAll(strings.ToLower(name), " ", "-")
	if err := p.writeAllocs(base + "-start"); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(p.dir, "cpu-"+base+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("CPU profile of %s: %w", name, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return errors.Join(f.Close(), p.writeAllocs(base))
	}, nil
}

func (p *profiler) writeAllocs(base string) error {
	f, err := os.Create(filepath.Join(p.dir, "allocs-"+base+".pprof"))
	if err != nil {
		return err
	}
	runtime.GC() // the profile is as of the last GC
	return errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
}

// processCPU is the CPU time, user and system, the erpbench process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
