package controlplane

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTenantNameLen bounds a tenant's display name, in characters: a name is for people, and
// every tenant list and show prints it.
const MaxTenantNameLen = 200

// validateTenantName checks a tenant's display name; "" stands for the slug.
func validateTenantName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the tenant name is not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(name) > MaxTenantNameLen:
		return fmt.Errorf("%w: the tenant name is %d characters long, the limit is %d", ErrInvalid, utf8.RuneCountInString(name), MaxTenantNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: the tenant name contains a control character", ErrInvalid)
	}
	return nil
}
