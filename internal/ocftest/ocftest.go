// Package ocftest helps tests check storhaug's agents the way Pacemaker and
// resource-agents' tools see them: it builds the storhaug binary once per
// test binary, installs its agent links into a private OCF root, runs the
// real ocf-tester against an agent (optionally in a network namespace or
// through a wrapper such as a lab node's), and validates meta-data with
// xmllint against ra-api-1.dtd (OCF 1.0) and resource-agents' metadata.rng
// (OCF 1.1). InstallSystem links the agents where pcs and crmsh find them,
// for one test.
//
// It imports neither package ocf nor package agents, so that their own
// tests can use it.
package ocftest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storhaug/storhaug/install"
	"github.com/storhaug/storhaug/internal/need"
)

// BuildTags are the build tags the storhaug binary is built with, as the
// Makefile builds it (urfave_cli_no_docs leaves out urfave/cli's man page
// generator and the Markdown parser it pulls in, whose initialisation every
// agent invocation would otherwise pay for).
const BuildTags = "urfave_cli_no_docs"

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// Binary returns the path of a storhaug binary built from this module's
// source, building it the first time it is called in the test binary. The
// binary and its directory are readable and executable by everyone, so that
// ocf-tester can run meta-data as user nobody. Call [Main] from TestMain to
// remove it afterwards.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = "/usr/local/go/bin/go"
		}
		gomod, err := exec.Command(goTool, "env", "GOMOD").Output()
		if err != nil {
			build.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		if root == "." || root == "" {
			build.err = fmt.Errorf("not inside the storhaug module")
			return
		}
		if build.dir, build.err = os.MkdirTemp("", "storhaug-bin-"); build.err != nil {
			return
		}
		if build.err = os.Chmod(build.dir, 0o755); build.err != nil {
			return
		}
		bin := filepath.Join(build.dir, "storhaug")
		cmd := exec.Command(goTool, "build", "-tags", BuildTags, "-o", bin, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the Makefile builds it
		build.out, build.err = cmd.CombinedOutput()
		build.bin = bin
	})
	if build.err != nil {
		t.Fatalf("ocftest: building storhaug: %v\n%s", build.err, build.out)
	}
	return build.bin
}

// Main runs the tests, then the after functions (teardowns of what tests
// share), and removes what [Binary] built. Use it as
//
//	func TestMain(m *testing.M) { ocftest.Main(m) }
func Main(m *testing.M, after ...func()) {
	code := m.Run()
	for _, f := range after {
		f()
	}
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// Agents returns the agent names the binary reports (storhaug agents).
func Agents(t testing.TB, binary string) []string {
	t.Helper()
	out, err := exec.Command(binary, "agents").Output()
	if err != nil {
		t.Fatalf("ocftest: %s agents: %v", binary, err)
	}
	return strings.Fields(string(out))
}

// Install links every agent of binary into a new OCF root made for this
// test, OCFROOT/resource.d/storhaug/NAME, as `storhaug install` does, and
// returns the OCF root. The directories are world-readable (ocf-tester runs
// meta-data as nobody).
func Install(t testing.TB, binary string) string {
	t.Helper()
	root := t.TempDir()
	// t.TempDir makes the directory and its parent private to root.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := install.Link(root, binary, Agents(t, binary)); err != nil {
		t.Fatalf("ocftest: install: %v", err)
	}
	return root
}

// AgentPath is where Install put the agent called name under ocfRoot.
func AgentPath(ocfRoot, name string) string {
	return filepath.Join(install.Dir(ocfRoot), name)
}

// Tester says how to run ocf-tester.
type Tester struct {
	// Instance is the resource name (-n); default "ocftest-" + agent name.
	Instance string
	// Params are the resource parameters (-o name=value).
	Params map[string]string
	// Netns, when set, runs ocf-tester inside that network namespace: a name
	// under /run/netns, or a path (nsenter --net=...).
	Netns string
	// Wrap, when set, turns the command line into the one to run, such as
	// a lab node's own exec prefix. It is applied after Netns.
	Wrap func(argv []string) []string
	// Env is added to the environment ocf-tester runs with.
	Env []string
	// OCFRoot is exported as OCF_ROOT; default: the root the agent is
	// installed under (two directories above the agent's own).
	OCFRoot string
	// Timeout bounds the whole run; default 5 minutes.
	Timeout time.Duration
}

// Path of the ocf-tester resource-agents installs.
const OCFTesterPath = "/usr/sbin/ocf-tester"

// Command returns the command line that runs ocf-tester (verbose) against
// the agent at agentPath, after Netns and Wrap.
func (o Tester) Command(agentPath string) []string {
	name := o.Instance
	if name == "" {
		name = "ocftest-" + filepath.Base(agentPath)
	}
	argv := []string{OCFTesterPath, "-v", "-n", name}
	keys := make([]string, 0, len(o.Params))
	for k := range o.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		argv = append(argv, "-o", k+"="+o.Params[k])
	}
	argv = append(argv, agentPath)
	if o.Netns != "" {
		ns := o.Netns
		if !strings.ContainsRune(ns, '/') {
			ns = "/run/netns/" + ns
		}
		argv = append([]string{"nsenter", "--net=" + ns, "--"}, argv...)
	}
	if o.Wrap != nil {
		argv = o.Wrap(argv)
	}
	return argv
}

// Run runs ocf-tester against the agent at agentPath (its full path) and
// returns its combined output; err is non-nil unless every test passed.
func (o Tester) Run(agentPath string) (output string, err error) {
	if _, err := os.Stat(OCFTesterPath); err != nil {
		return "", fmt.Errorf("ocf-tester is not installed (resource-agents; scripts/deps.sh): %w", err)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := o.Command(agentPath)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	root := o.OCFRoot
	if root == "" {
		root = filepath.Dir(filepath.Dir(filepath.Dir(agentPath)))
	}
	cmd.Env = append(os.Environ(), "OCF_ROOT="+root)
	cmd.Env = append(cmd.Env, o.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err == nil && !strings.Contains(out.String(), "passed all tests") {
		err = fmt.Errorf("ocf-tester exited 0 without saying the agent passed")
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return out.String(), err
}

// Pass runs ocf-tester and fails the test, showing ocf-tester's output,
// unless the agent passed every test.
func (o Tester) Pass(t testing.TB, agentPath string) {
	t.Helper()
	out, err := o.Run(agentPath)
	if err != nil {
		t.Fatalf("ocf-tester failed: %v\n%s", err, out)
	}
	t.Logf("ocf-tester: %s", lastLine(out))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// InstallSystem links every agent of binary into Pacemaker's own OCF root,
// /usr/lib/ocf/resource.d/storhaug/, with `binary install`: pcs and crmsh
// look agents up only there. The links are removed (`binary uninstall`)
// when the test ends, also when it fails; the test fails if any is left.
// It needs root, and refuses (fails) when the storhaug provider directory
// exists already (an installed storhaug, or another test's links): it never
// replaces what it did not make.
func InstallSystem(t testing.TB, binary string) {
	t.Helper()
	need.Root(t, "to link the agents into "+install.Dir(install.DefaultOCFRoot))
	dir := install.Dir(install.DefaultOCFRoot)
	if _, err := os.Lstat(dir); err == nil {
		t.Fatalf("ocftest: %s exists already (storhaug installed on this host, or another test's links): not touching it", dir)
	}
	run := func(args ...string) error {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "OCF_ROOT="+install.DefaultOCFRoot)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", binary, strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if err := run("uninstall"); err != nil {
			t.Errorf("ocftest: %v", err)
		}
		if _, err := os.Lstat(dir); err == nil {
			t.Errorf("ocftest: %s is left after uninstall", dir)
		}
	})
	if err := run("install"); err != nil {
		t.Fatalf("ocftest: %v", err)
	}
}
