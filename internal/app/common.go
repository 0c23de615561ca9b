// Package app holds what the three roles' commands share: logging flags,
// the common manager options and the "not built yet" guard.
package app

import (
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"

	"github.com/openelb/openelb-operator/internal/logging"
)

// ErrNotBuilt is returned by a role that is not implemented in this build.
var ErrNotBuilt = errors.New("not built yet")

// NotBuilt returns the RunE of a role that does not exist in this build: it
// exits non-zero with a clear message instead of pretending to work.
func NotBuilt(role, issue string) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		return fmt.Errorf("the %s role is %w in this build of openelb (tracked in %s)", role, ErrNotBuilt, issue)
	}
}

// SetupLogging installs the logger described by the logging flags.
func SetupLogging(o logging.Options, role string) (logr.Logger, error) {
	log, err := logging.Setup(o)
	if err != nil {
		return log, err
	}
	return log.WithName(role), nil
}
