package modules

import (
	"fmt"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// MaxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN-1); it truncates longer names
// silently, so that two long names could become one.
const MaxIdentLen = 63

// checkIdentifiers refuses any block label in a module file (the names of tables, columns,
// indexes, checks, foreign keys, enums) that is not a plain PostgreSQL identifier: 1 to 63 bytes
// of lower-case ASCII letters, digits and '_', not starting with a digit. Atlas writes names
// between double quotes without doubling quotes inside them, so a name is the one piece of
// module text that reaches SQL as it is; the rule also keeps names usable unquoted in the data
// API's field names.
func checkIdentifiers(module, file string, body *hclsyntax.Body) error {
	for _, b := range body.Blocks {
		for i, l := range b.Labels {
			if why := identProblem(l); why != "" {
				return fmt.Errorf("load module %q: %s:%d: %s name %q: %s", module, file, b.LabelRanges[i].Start.Line, b.Type, l, why)
			}
		}
		if err := checkIdentifiers(module, file, b.Body); err != nil {
			return err
		}
	}
	return nil
}

// identProblem says what is wrong with name as an identifier, or "" when nothing is.
func identProblem(name string) string {
	switch {
	case name == "":
		return "the name is empty"
	case len(name) > MaxIdentLen:
		return fmt.Sprintf("it is %d bytes long, the limit is %d", len(name), MaxIdentLen)
	case name[0] >= '0' && name[0] <= '9':
		return "it must not start with a digit"
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c >= 'A' && c <= 'Z':
			return "it must be lower case"
		default:
			return "only lower-case ASCII letters, digits and '_' are allowed"
		}
	}
	return ""
}
