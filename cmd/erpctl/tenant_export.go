package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

// ---- tenant export / import ----

// TenantFileOptions are the inputs of tenant export and tenant import.
type TenantFileOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug ident.Slug
	File string
	Name string // import: the new tenant's display name (default: the exported tenant's)
}

// NewCmdTenantExport parses tenant export; runF replaces the run in tests.
func NewCmdTenantExport(f *Factory, runF func(*TenantFileOptions) error) *cobra.Command {
	opts := &TenantFileOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "export SLUG -f FILE",
		Short: "Write every row of a tenant, its modules and their desired-state hashes to one file",
		Long: `Write every row of a tenant's module tables, its modules and their desired-state hashes to one
file, read from one snapshot (consistent under concurrent writes) and streamed (memory stays
flat). The file names no slug, schema or cluster: erpctl tenant import loads it as any tenant,
anywhere. The file appears only when the export succeeded: it is written beside FILE and renamed
over it, so FILE must be a regular file or a new path (a link, a device or a pipe is refused).
With -f - the file goes to stdout (not a terminal) and the summary to stderr.`,
		Example: "  erpctl tenant export acme -f acme.erpctl\n  erpctl tenant export acme -f - | ssh other erpctl tenant import acme -f -",
		Args:    exactArgs("SLUG"),
		RunE:    fileRunE(f, opts, runF, tenantExportRun),
	}
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "the file to write, a regular file or a new path; - for stdout (required)")
	return cmd
}

// NewCmdTenantImport parses tenant import; runF replaces the run in tests.
func NewCmdTenantImport(f *Factory, runF func(*TenantFileOptions) error) *cobra.Command {
	opts := &TenantFileOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "import SLUG -f FILE",
		Short: "Create a tenant with the rows of an export file, in one transaction",
		Long: `Create a new tenant from a file of erpctl tenant export: its tables are made as the current
desired state of the file's modules, then every row is loaded and every identity moved past the
largest id, all in one transaction. A damaged file, a slug in use, a module not loaded here or
a change the rows cannot follow is refused, and nothing is written.`,
		Example: "  erpctl tenant import acme2 -f acme.erpctl",
		Args:    exactArgs("SLUG"),
		RunE:    fileRunE(f, opts, runF, tenantImportRun),
	}
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "the export file to read; - for stdin (required)")
	cmd.Flags().StringVar(&opts.Name, "name", "", "display name (default: the exported tenant's)")
	return cmd
}

func fileRunE(f *Factory, opts *TenantFileOptions, runF func(*TenantFileOptions) error,
	run func(context.Context, *TenantFileOptions) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		slug, err := parseSlug(args[0])
		if err != nil {
			return err
		}
		if opts.File == "" {
			return usageErrorf("give the file with -f FILE")
		}
		opts.Slug, opts.Format = slug, f.Format()
		if runF != nil {
			return runF(opts)
		}
		return run(cmd.Context(), opts)
	}
}

// progress prints a table's bytes streamed so far on a terminal's stderr, nothing elsewhere.
func (o *TenantFileOptions) progress(verb string) (controlplane.Progress, func()) {
	if !o.IO.IsStderrTTY() {
		return nil, func() {}
	}
	last := time.Time{}
	return func(table string, bytes int64) {
			if now := time.Now(); now.Sub(last) >= 100*time.Millisecond {
				last = now
				fmt.Fprintf(o.IO.ErrOut, "\r\x1b[K%s %s: %.1f MB", verb, table, float64(bytes)/1e6)
			}
		}, func() {
			fmt.Fprint(o.IO.ErrOut, "\r\x1b[K")
		}
}

// exportTarget refuses, before anything is read, a -f that names anything but a regular file or
// a new path. The export replaces its target by a rename, which would replace a device node
// itself (as root, /dev/null) or a link rather than what it points to.
func exportTarget(file string) error {
	fi, err := os.Lstat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode().IsRegular():
		return nil
	}
	kind := "not a regular file"
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		kind = "a symbolic link"
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a block device"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return fmt.Errorf("%s is %s, not a regular file: give a regular file or a new path, or -f - for stdout", file, kind)
}

func tenantExportRun(ctx context.Context, opts *TenantFileOptions) error {
	if opts.File == "-" {
		return tenantExportStdout(ctx, opts)
	}
	if err := exportTarget(opts.File); err != nil {
		return badInput(fmt.Errorf("export tenant %q: %w", opts.Slug, err))
	}
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	// Write beside the target and rename at the end: a failed export leaves no partial file.
	tmp, err := os.CreateTemp(filepath.Dir(opts.File), "."+filepath.Base(opts.File)+".*")
	if err != nil {
		return badInput(fmt.Errorf("export tenant %q: %w", opts.Slug, err))
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	progress, clear := opts.progress("exporting")
	sum, err := p.ExportTenant(ctx, opts.Slug, tmp, progress)
	clear()
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("export tenant %q: write %s: %w", opts.Slug, opts.File, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export tenant %q: write %s: %w", opts.Slug, opts.File, err)
	}
	if err := os.Rename(tmp.Name(), opts.File); err != nil {
		return fmt.Errorf("export tenant %q: %w", opts.Slug, err)
	}
	return opts.IO.Render(opts.Format, sum, func() error {
		fmt.Fprintln(opts.IO.Out, exportSummary(opts, sum, opts.File))
		return nil
	})
}

// tenantExportStdout writes the export file to stdout, never to a terminal, and the summary to
// stderr (in the output format asked for), since stdout carries the file.
func tenantExportStdout(ctx context.Context, opts *TenantFileOptions) error {
	if opts.IO.IsStdoutTTY() {
		return badInput(fmt.Errorf("export tenant %q: the export file is binary and is not written to a terminal: redirect stdout, or give -f FILE", opts.Slug))
	}
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	sum, err := p.ExportTenant(ctx, opts.Slug, opts.IO.Out, nil)
	if err != nil {
		return err
	}
	switch opts.Format {
	case term.FormatJSON:
		return term.WriteJSON(opts.IO.ErrOut, sum)
	case term.FormatYAML:
		return term.WriteYAML(opts.IO.ErrOut, sum)
	}
	_, err = fmt.Fprintln(opts.IO.ErrOut, exportSummary(opts, sum, "stdout"))
	return err
}

func exportSummary(opts *TenantFileOptions, sum *controlplane.ExportSummary, to string) string {
	var rows int64
	for _, t := range sum.Tables {
		rows += t.Rows
	}
	return fmt.Sprintf("%s Exported tenant %s to %s: %s in %s", opts.IO.Styles().Success.Render("✓"),
		opts.Slug, term.Safe(to), plural(int(rows), "row", "rows"), plural(len(sum.Tables), "table", "tables"))
}

func tenantImportRun(ctx context.Context, opts *TenantFileOptions) error {
	var f io.Reader = opts.IO.In
	if opts.File != "-" {
		file, err := os.Open(opts.File)
		if err != nil {
			return badInput(fmt.Errorf("import tenant %q: %w", opts.Slug, err))
		}
		defer file.Close()
		f = file
	}
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	progress, clear := opts.progress("importing")
	rep, err := p.ImportTenant(ctx, opts.Slug, f, opts.Name, progress)
	clear()
	if err != nil {
		return err
	}
	var rows int64
	for _, t := range rep.Tables {
		rows += t.Rows
	}
	from := opts.File
	if from == "-" {
		from = "stdin"
	}
	return opts.IO.Render(opts.Format, rep, func() error {
		st := opts.IO.Styles()
		fmt.Fprintf(opts.IO.Out, "%s Imported tenant %s (schema %s) from %s: %s in %s; %s\n", st.Success.Render("✓"),
			st.Bold.Render(rep.Tenant.Slug), rep.Tenant.Schema, term.Safe(from), plural(int(rows), "row", "rows"),
			plural(len(rep.Tables), "table", "tables"), st.Status(rep.Tenant.Status))
		for _, n := range rep.Notes {
			fmt.Fprintf(opts.IO.Out, "  note: %s\n", term.Safe(n)) // names from the file
		}
		return nil
	})
}
