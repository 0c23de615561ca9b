package netxtest

import (
	"os"
	"os/exec"
	"testing"
)

// Require stops a test that needs root (when root is set) and the given
// programs on PATH. Under CI=true (CI runs as root with every tool
// installed) a missing need fails the test; elsewhere (a developer's
// unprivileged shell) it skips with the reason.
func Require(t testing.TB, root bool, tools ...string) {
	t.Helper()
	var missing []string
	if root && os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("test cannot run (needs %v); CI=true makes this a failure", missing)
	}
	t.Skipf("skipped outside CI: needs %v (run as root with the tools installed; under CI=true this is a failure)", missing)
}
