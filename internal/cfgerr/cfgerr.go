// Package cfgerr is the module's one configuration error: every package's
// ErrConfig is ErrConfig, and every configuration error says
// "<package>: <what is wrong> (invalid configuration)" and matches it.
package cfgerr

import (
	"errors"
	"fmt"
)

// ErrConfig is matched by every configuration error of the module.
var ErrConfig = errors.New("invalid configuration")

// New returns "<pkg>: <message> (invalid configuration)", matching
// ErrConfig.
func New(pkg, format string, args ...any) error {
	return fmt.Errorf("%s: %s (%w)", pkg, fmt.Sprintf(format, args...), ErrConfig)
}
