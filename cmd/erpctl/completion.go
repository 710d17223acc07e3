package main

import (
	"github.com/spf13/cobra"
)

// NewCmdCompletion prints a shell completion script.
func NewCmdCompletion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `Print the shell completion script for bash, zsh or fish. For example:

  bash:  source <(erpctl completion bash)
  zsh:   erpctl completion zsh > "${fpath[1]}/_erpctl"
  fish:  erpctl completion fish | source`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      exactArgs("SHELL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := f.IO.Out
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return usageErrorf("unsupported shell %q: use bash, zsh or fish", args[0])
		},
	}
}
