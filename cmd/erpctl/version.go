package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/internal/term"
)

// VersionOptions are the inputs of version.
type VersionOptions struct {
	IO     *term.IOStreams
	Format term.Format
}

// NewCmdVersion parses version; runF replaces the run in tests.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IO}
	return &cobra.Command{
		Use:   "version",
		Short: "Print erpctl's version, commit and build date",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
}

func versionLine() string {
	return fmt.Sprintf("erpctl %s (commit %s, built %s, %s)", version, commit, date, runtime.Version())
}

func versionRun(opts *VersionOptions) error {
	v := struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
		Date    string `json:"date"`
		Go      string `json:"go"`
	}{version, commit, date, runtime.Version()}
	return opts.IO.Render(opts.Format, v, func() error {
		_, err := fmt.Fprintln(opts.IO.Out, versionLine())
		return err
	})
}
