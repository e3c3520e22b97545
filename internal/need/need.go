// Package need is the one policy for a test whose prerequisite is missing
// (a tool, a file, root, a host without a running cluster): on a
// developer's machine the test is skipped and says what is missing; in CI
// (CI=true) it fails, because scripts/deps.sh installs everything the tests
// need and a skip there would hide a test that never ran.
package need

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// TB is the part of testing.TB the package uses.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// CI reports whether the tests run in CI: CI set to a true value (CI=true,
// as GitHub Actions, GitLab CI and .ci/run set it).
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Missing ends the test because a prerequisite is missing: a skip, or under
// CI a failure. The message says what is missing.
func Missing(t TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatal("missing prerequisite (a failure under CI=true, not a skip): " + msg)
		return
	}
	t.Skip(msg)
}

// Root ends the test (see Missing) unless it runs as root; why says what
// needs it.
func Root(t TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root: %s", why)
	}
}

// Tool returns the path of the program name, looked up in PATH, or ends
// the test (see Missing); pkg names the Debian package that has it.
func Tool(t TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed (Debian package %s; scripts/deps.sh installs it)", name, pkg)
	}
	return p
}

// File ends the test (see Missing) unless path exists; pkg names the
// Debian package that has it.
func File(t TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s is not installed (Debian package %s; scripts/deps.sh installs it): %v", path, pkg, err)
	}
}
