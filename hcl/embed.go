// Package hcl holds the built-in modules' Atlas HCL, one file per module, embedded into the binary.
package hcl

import "embed"

// FS holds one NAME.hcl file per built-in module.
//
//go:embed *.hcl
var FS embed.FS
