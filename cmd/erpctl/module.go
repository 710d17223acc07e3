package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/internal/term"
	"github.com/erpctl/erpctl/modules"
)

func newCmdModule(f *Factory) *cobra.Command {
	return newGroupCmd("module", "List, show and write module files; publish them as generations; their history and diffs",
		NewCmdModuleList(f, nil),
		NewCmdModuleShow(f, nil),
		NewCmdModuleNew(f, nil),
		NewCmdModulePublish(f, nil),
		NewCmdModuleHistory(f, nil),
		NewCmdModuleDiff(f, nil),
	)
}

// moduleView is a module as module list and show print it.
type moduleView struct {
	Name    string      `json:"name"`
	File    string      `json:"file"`
	Builtin bool        `json:"builtin"`
	Tables  []string    `json:"tables"`
	Deps    []string    `json:"deps"`
	Details []tableView `json:"resources,omitempty"`
}

type tableView struct {
	Table    string       `json:"table"`
	Resource string       `json:"resource"`
	Path     string       `json:"path"`
	Columns  []columnView `json:"columns"`
}

type columnView struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Kind       string   `json:"kind"`
	Null       bool     `json:"null"`
	Required   bool     `json:"required"`
	ReadOnly   bool     `json:"read_only"`
	Unique     bool     `json:"unique"`
	References string   `json:"references,omitempty"`
	Choices    []string `json:"choices,omitempty"` // an enum column's values
}

func viewModule(m *modules.Module) moduleView {
	v := moduleView{Name: m.Name, File: m.File, Builtin: m.Builtin, Tables: m.Tables, Deps: m.Deps}
	if v.Tables == nil {
		v.Tables = []string{}
	}
	if v.Deps == nil {
		v.Deps = []string{}
	}
	return v
}

func moduleSource(m moduleView) string {
	if m.Builtin {
		return "built-in"
	}
	return m.File
}

// ---- module list ----

// ModuleListOptions are the inputs of module list.
type ModuleListOptions struct {
	IO       *term.IOStreams
	Registry func() (*modules.Registry, error)
	Format   term.Format
}

// NewCmdModuleList parses module list; runF replaces the run in tests.
func NewCmdModuleList(f *Factory, runF func(*ModuleListOptions) error) *cobra.Command {
	opts := &ModuleListOptions{IO: f.IO, Registry: f.Registry}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the modules: built in and from --modules-dir",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return moduleListRun(opts)
		},
	}
}

func moduleListRun(opts *ModuleListOptions) error {
	reg, err := opts.Registry()
	if err != nil {
		return err
	}
	views := []moduleView{}
	for _, m := range reg.Modules() {
		views = append(views, viewModule(m))
	}
	return opts.IO.Render(opts.Format, views, func() error {
		tbl := opts.IO.NewTable("name", "source", "tables", "depends on")
		for _, v := range views {
			tbl.Row(v.Name, moduleSource(v), strings.Join(v.Tables, ","), orDash(strings.Join(v.Deps, ",")))
		}
		return tbl.Render()
	})
}

// ---- module show ----

// ModuleShowOptions are the inputs of module show.
type ModuleShowOptions struct {
	IO       *term.IOStreams
	Registry func() (*modules.Registry, error)
	Format   term.Format

	Name string
}

// NewCmdModuleShow parses module show; runF replaces the run in tests.
func NewCmdModuleShow(f *Factory, runF func(*ModuleShowOptions) error) *cobra.Command {
	opts := &ModuleShowOptions{IO: f.IO, Registry: f.Registry}
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a module: its file, dependencies, tables, columns and API resources",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name, opts.Format = args[0], f.Format()
			if runF != nil {
				return runF(opts)
			}
			return moduleShowRun(opts)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return f.completeModules(cmd, args, s)
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
	}
}

func moduleShowRun(opts *ModuleShowOptions) error {
	reg, err := opts.Registry()
	if err != nil {
		return err
	}
	m, ok := reg.Module(opts.Name)
	if !ok {
		return badInput(fmt.Errorf("%w %q (known: %s)", modules.ErrUnknownModule, opts.Name, strings.Join(reg.Names(), ", ")))
	}
	v := viewModule(m)
	v.Details = []tableView{}
	for _, r := range reg.Resources([]string{m.Name}) {
		tv := tableView{Table: r.Table, Resource: r.Name, Path: fmt.Sprintf("/api/{tenant}/%s/%s/", r.Module, r.Name), Columns: []columnView{}}
		for _, c := range r.Columns {
			tv.Columns = append(tv.Columns, columnView{Name: c.Name, Type: c.SQLType, Kind: string(c.Kind), Null: c.Null,
				Required: c.Required(), ReadOnly: c.ReadOnly, Unique: c.Unique, References: c.References, Choices: c.Choices})
		}
		v.Details = append(v.Details, tv)
	}
	return opts.IO.Render(opts.Format, v, func() error {
		st := opts.IO.Styles()
		if err := opts.IO.PrintFields(
			term.Field{Label: "Module", Value: v.Name},
			term.Field{Label: "Source", Value: moduleSource(v)},
			term.Field{Label: "Depends on", Value: orDash(strings.Join(v.Deps, ", "))},
			term.Field{Label: "Tables", Value: strings.Join(v.Tables, ", ")},
		); err != nil {
			return err
		}
		for _, tv := range v.Details {
			fmt.Fprintf(opts.IO.Out, "\n%s  %s\n", st.Bold.Render("Table "+tv.Table), st.Muted.Render(tv.Path))
			tbl := opts.IO.NewTable("column", "type", "null", "notes")
			for _, c := range tv.Columns {
				var notes []string
				if c.ReadOnly {
					notes = append(notes, "read-only (tenant-aware)")
				}
				if c.Required {
					notes = append(notes, "required")
				}
				if c.Unique {
					notes = append(notes, "unique")
				}
				if c.References != "" {
					notes = append(notes, "→ "+c.References)
				}
				if len(c.Choices) > 0 {
					notes = append(notes, "one of "+strings.Join(c.Choices, ", "))
				}
				null := "no"
				if c.Null {
					null = "yes"
				}
				tbl.Row(c.Name, c.Type, null, strings.Join(notes, ", "))
			}
			if err := tbl.Render(); err != nil {
				return err
			}
		}
		return nil
	})
}

// ---- module new ----

// ModuleNewOptions are the inputs of module new.
type ModuleNewOptions struct {
	IO     *term.IOStreams
	Format term.Format

	Name       string
	ModulesDir string
}

// NewCmdModuleNew parses module new; runF replaces the run in tests.
func NewCmdModuleNew(f *Factory, runF func(*ModuleNewOptions) error) *cobra.Command {
	opts := &ModuleNewOptions{IO: f.IO}
	return &cobra.Command{
		Use:   "new NAME",
		Short: "Write a starter module file NAME.hcl into --modules-dir",
		Long: `Write a starter module file NAME.hcl into --modules-dir (created if missing), with one table to
edit. Once published (erpctl module publish), tenants that follow every module get the new
module; others get it with erpctl tenant enable-module SLUG NAME.

NAME is lowercase letters, digits and '_', starts with a letter, and is not a built-in module.`,
		Example: "  erpctl --modules-dir ./modules module new crm",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name, opts.Format, opts.ModulesDir = args[0], f.Format(), f.ModulesDir
			if runF != nil {
				return runF(opts)
			}
			return moduleNewRun(opts)
		},
	}
}

var newModuleNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// maxModuleName is the longest module name the loader accepts.
const maxModuleName = 31

func moduleNewRun(opts *ModuleNewOptions) error {
	name := opts.Name
	switch {
	case !newModuleNameRE.MatchString(name):
		return badInput(fmt.Errorf("invalid module name %q: use lowercase letters, digits and '_', starting with a letter", name))
	case len(name) > maxModuleName:
		return badInput(fmt.Errorf("invalid module name %q: it is %d characters long, the limit is %d", name, len(name), maxModuleName))
	case name == modules.DeploymentName:
		return badInput(fmt.Errorf("%q is not a module name: %s.hcl beside the modules holds the deployment's stages (see docs/operations.md)", name, name))
	}
	builtins, err := modules.Load("")
	if err != nil {
		return err
	}
	if m, ok := builtins.Module(name); ok && m.Builtin {
		return badInput(fmt.Errorf("%q is a built-in module: choose another name", name))
	}
	if opts.ModulesDir == "" {
		return usageErrorf("module new needs --modules-dir (or %s): the directory to write %s.hcl into", envModulesDir, name)
	}
	if err := os.MkdirAll(opts.ModulesDir, 0o755); err != nil {
		return fmt.Errorf("create modules dir: %w", err)
	}
	path := filepath.Join(opts.ModulesDir, name+".hcl")
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return badInput(fmt.Errorf("%s already exists: refusing to overwrite it", path))
	}
	if err != nil {
		return fmt.Errorf("write module file: %w", err)
	}
	table := name + "_items"
	_, err = file.WriteString(starterModule(name, table))
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write module file: %w", err)
	}
	// The file must load alongside every other module.
	if _, err := modules.Load(opts.ModulesDir); err != nil {
		os.Remove(path)
		return badInput(fmt.Errorf("the starter module does not load with the modules in %s, so it was not kept: %w", opts.ModulesDir, err))
	}
	res := struct {
		Name   string   `json:"name"`
		File   string   `json:"file"`
		Tables []string `json:"tables"`
	}{name, path, []string{table}}
	return opts.IO.Render(opts.Format, res, func() error {
		st := opts.IO.Styles()
		fmt.Fprintf(opts.IO.Out, "%s Wrote %s with table %s\n", st.Success.Render("✓"), path, table)
		fmt.Fprintf(opts.IO.Out, "Edit it, check it with: erpctl module show %s\n", name)
		fmt.Fprintf(opts.IO.Out, "Publish it with: erpctl module publish (or erpctl reconcile --all --publish); tenants that follow every module then get it, others with: erpctl tenant enable-module SLUG %s\n", name)
		return nil
	})
}

func starterModule(name, table string) string {
	return strings.NewReplacer("NAME", name, "TABLE", table, "RESOURCE", modules.ResourceName(table)).Replace(`# Module NAME: describe what it holds.
#
# Declare the module's tables below in Atlas HCL. The tenant-aware columns are added
# automatically to every table: id (bigint identity, the primary key), created_at and
# updated_at (timestamptz, default now()), created_by and updated_by (text). Do not declare
# them. erpctl puts the tables in each tenant's own schema: keep schema = schema.tenant.
#
# A table may reference another module's table in a foreign key, for example:
#   column "product_id" {
#     type = bigint
#     null = false
#   }
#   foreign_key "TABLE_product_id_fkey" {
#     columns     = [column.product_id]
#     ref_columns = [table.products.column.id]
#   }
#
# The data API serves this table at /api/{tenant}/NAME/RESOURCE/.
schema "tenant" {}

table "TABLE" {
  schema = schema.tenant
  column "name" {
    type = text
    null = false
  }
  column "notes" {
    type = text
    null = true
  }
  index "TABLE_name_key" {
    unique  = true
    columns = [column.name]
  }
}
`)
}
