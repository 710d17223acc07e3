package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/internal/term"
)

// NewCmdRoot builds the erpctl command tree.
func NewCmdRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "erpctl",
		Short: "Control plane of a schema-per-tenant ERP on PostgreSQL",
		Long: `erpctl keeps one PostgreSQL schema per tenant equal to the tables of the modules the
tenant has enabled, and serves each tenant's tables over a REST data API.

Without --database-url (or ERPCTL_DATABASE_URL) erpctl starts and reuses a private PostgreSQL
cluster under $ERPCTL_HOME (default ~/.local/share/erpctl); see erpctl db.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return f.resolveGlobals(cmd)
		},
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetFlagErrorFunc(flagError)

	pf := root.PersistentFlags()
	pf.StringVar(&f.DatabaseURL, "database-url", "", "PostgreSQL URL of the erpctl database (env "+envDatabaseURL+"; default: the embedded cluster)")
	pf.StringVar(&f.DirectDatabaseURL, "direct-database-url", "", "PostgreSQL URL of the same database bypassing a transaction pooler; when set, --database-url is treated as PgBouncer in transaction mode (env "+envDirectDatabaseURL+")")
	pf.StringVar(&f.ModulesDir, "modules-dir", "", "directory of extra module HCL files (env "+envModulesDir+")")
	pf.StringVarP(&f.Output, "output", "o", string(term.FormatTable), "output format: table, json or yaml")
	pf.BoolVar(&f.NoColor, "no-color", false, "disable colour (also NO_COLOR)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(term.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = root.MarkPersistentFlagDirname("modules-dir")

	root.AddGroup(
		&cobra.Group{ID: "tenants", Title: "Tenants and modules:"},
		&cobra.Group{ID: "reconcile", Title: "Reconciling:"},
		&cobra.Group{ID: "admin", Title: "Administration:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("tenants", newCmdTenant(f), newCmdModule(f))
	add("reconcile", NewCmdPlan(f, nil), NewCmdReconcile(f, nil), newCmdRollout(f), newCmdDebug(f), NewCmdDaemon(f, nil))
	add("admin", newCmdToken(f), newCmdOperator(f), newCmdDB(f), NewCmdVersion(f, nil), NewCmdCompletion(f))
	root.SetHelpCommandGroupID("admin")
	return root
}

// resolveGlobals applies the environment to the global flags not given and validates them.
func (f *Factory) resolveGlobals(cmd *cobra.Command) error {
	flags := cmd.Flags()
	if !flags.Changed("database-url") {
		f.DatabaseURL = f.Getenv(envDatabaseURL)
	}
	if !flags.Changed("direct-database-url") {
		f.DirectDatabaseURL = f.Getenv(envDirectDatabaseURL)
	}
	if !flags.Changed("modules-dir") {
		f.ModulesDir = f.Getenv(envModulesDir)
	}
	if f.NoColor || f.Getenv(envNoColor) != "" {
		f.IO.SetColorEnabled(false)
	}
	format, err := term.ParseFormat(f.Output)
	if err != nil {
		return usageErrorf("%s", err)
	}
	f.format = format
	return nil
}

// newGroupCmd is a command that only holds subcommands: alone it prints its help; with an
// argument that names no subcommand it is a usage error.
func newGroupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	c.AddCommand(subs...)
	return c
}

// exactArgs is cobra.ExactArgs with a usage error that names what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageErrorf("%s needs %s", cmdPath(cmd), joinArgNames(names[len(args):]))
		case len(args) > len(names):
			return usageErrorf("%s takes %d argument(s), got %d: unexpected %q", cmdPath(cmd), len(names), len(args), args[len(names)])
		}
		return nil
	}
}

// maxArgs accepts up to len(names) arguments.
func maxArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > len(names) {
			return usageErrorf("%s takes at most %d argument(s), got %d: unexpected %q", cmdPath(cmd), len(names), len(args), args[len(names)])
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmdPath(cmd), args[0])
	}
	return nil
}

func joinArgNames(names []string) string {
	s := ""
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			s += " and "
		default:
			s += ", "
		}
		s += n
	}
	return s
}

// cmdPath is the command's path without "erpctl", for messages that already start with it.
func cmdPath(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name()
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
