package main

// The multi-call binary as Pacemaker and the admin run it: built once
// (ocftest.Binary), called through agent-named symlinks and as storhaug.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/command"
	"github.com/storhaug/storhaug/install"
	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/internal/version"
	"github.com/storhaug/storhaug/ocf"
)

func TestMain(m *testing.M) { ocftest.Main(m) }

type ran struct {
	code           int
	stdout, stderr string
}

// run runs argv[0] (a path) with the rest as arguments and env as the whole
// environment (nil: none at all).
func run(t *testing.T, env []string, argv ...string) ran {
	t.Helper()
	return runCmd(t, exec.Command(argv[0], argv[1:]...), env)
}

func runCmd(t *testing.T, cmd *exec.Cmd, env []string) ran {
	t.Helper()
	cmd.Env = append([]string{}, env...)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return ran{code, out.String(), errw.String()}
}

func (r ran) want(t *testing.T, what string, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r.code, code, r.stdout, r.stderr)
	}
}

// needAgents skips when no agent is built in.
func needAgents(t *testing.T) []string {
	t.Helper()
	names := agents.Names()
	if len(names) == 0 {
		t.Fatal("no agents registered")
	}
	return names
}

func TestAgentsCommand(t *testing.T) {
	bin := ocftest.Binary(t)
	r := run(t, nil, bin, "agents")
	r.want(t, "storhaug agents", 0)
	want := strings.Join(agents.Names(), "\n")
	if want != "" {
		want += "\n"
	}
	if r.stdout != want {
		t.Errorf("storhaug agents:\n%q\nwant\n%q", r.stdout, want)
	}
}

func TestVersionCommand(t *testing.T) {
	bin := ocftest.Binary(t)
	r := run(t, nil, bin, "version")
	r.want(t, "storhaug version", 0)
	if r.stdout != version.Version+"\n" {
		t.Errorf("storhaug version: %q, want %q", r.stdout, version.Version)
	}
	if r := run(t, nil, bin, "--version"); r.code != 0 || !strings.Contains(r.stdout, version.Version) {
		t.Errorf("storhaug --version: %d %q", r.code, r.stdout)
	}
}

func TestUnknownCommand(t *testing.T) {
	bin := ocftest.Binary(t)
	r := run(t, nil, bin, "frobnicate")
	if r.code == 0 || !strings.Contains(r.stderr, "frobnicate") {
		t.Errorf("storhaug frobnicate: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestDispatchByArgv0(t *testing.T) {
	names := needAgents(t)
	bin := ocftest.Binary(t)
	dir := t.TempDir()
	for _, n := range names {
		link := filepath.Join(dir, n)
		if err := os.Symlink(bin, link); err != nil {
			t.Fatal(err)
		}
		r := run(t, nil, link, "meta-data")
		r.want(t, n+" meta-data", 0)
		if !strings.Contains(r.stdout, `<resource-agent name="`+n+`"`) {
			t.Errorf("%s meta-data is not its own:\n%s", n, r.stdout)
		}
		if err := ocftest.CheckDTD(t, []byte(r.stdout)); err != nil {
			t.Error(err)
		}
		r = run(t, []string{"OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=1"}, link, "meta-data")
		r.want(t, n+" meta-data (1.1)", 0)
		if !strings.Contains(r.stdout, "<version>1.1</version>") {
			t.Errorf("%s meta-data with OCF_RA_VERSION_MINOR=1 is not 1.1", n)
		}
		r = run(t, nil, link)
		r.want(t, n+" (no action)", 2)
		if r.stdout != "" || !strings.HasPrefix(r.stderr, "usage: "+n+" {") {
			t.Errorf("%s without an action: stdout %q stderr %q", n, r.stdout, r.stderr)
		}
		run(t, nil, link, "usage").want(t, n+" usage", 0)
		r = run(t, []string{"HA_LOGFACILITY=none"}, link, "frobnicate")
		r.want(t, n+" frobnicate", 3)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if !strings.HasPrefix(lines[len(lines)-1], "ocf-exit-reason:") {
			t.Errorf("%s frobnicate: the last stderr line is not the exit reason: %q", n, r.stderr)
		}
	}
	// A name that is no agent is the command line.
	other := filepath.Join(dir, "storhaug-copy")
	os.Symlink(bin, other)
	r := run(t, nil, other, "agents")
	r.want(t, "storhaug-copy agents", 0)
	if r.stdout != strings.Join(names, "\n")+"\n" {
		t.Errorf("storhaug-copy agents: %q", r.stdout)
	}
}

func TestAgentCommand(t *testing.T) {
	names := needAgents(t)
	bin := ocftest.Binary(t)
	env := []string{"HA_LOGFACILITY=none"}
	for _, n := range names {
		r := run(t, env, bin, "agent", n, "meta-data")
		r.want(t, "agent "+n+" meta-data", 0)
		if !strings.Contains(r.stdout, `<resource-agent name="`+n+`"`) {
			t.Errorf("agent %s meta-data:\n%s", n, r.stdout)
		}
		run(t, env, bin, "agent", n).want(t, "agent "+n, 2)
		run(t, env, bin, "agent", n, "frobnicate").want(t, "agent "+n+" frobnicate", 3)
		a := agents.Lookup(n)
		required := slices.ContainsFunc(a.Params, func(p ocf.Param) bool { return p.Required })
		if required {
			r := run(t, env, bin, "agent", n, "validate-all")
			r.want(t, "agent "+n+" validate-all without parameters", 6)
			if !strings.Contains(r.stderr, "ocf-exit-reason:parameter ") {
				t.Errorf("agent %s validate-all: exit reason does not name the parameter: %q", n, r.stderr)
			}
		}
	}
	r := run(t, env, bin, "agent", "Nope", "start")
	r.want(t, "agent Nope start", 2)
	if !strings.Contains(r.stderr, `no agent called "Nope"`) {
		t.Errorf("agent Nope: stderr %q", r.stderr)
	}
	run(t, env, bin, "agent").want(t, "agent (no name)", 2)
}

// TestMetaDataCommand: `storhaug meta-data NAME` prints, for the same
// environment, exactly what the agent prints for Pacemaker (run by its link's
// name and as `storhaug agent NAME meta-data`), in both OCF versions, and
// every form is valid against the schemas of resource-agents and of pcs.
// Flags it cannot use are refused, also after NAME, where urfave/cli stops
// parsing them.
func TestMetaDataCommand(t *testing.T) {
	bin := ocftest.Binary(t)
	r := run(t, nil, bin, "meta-data", "Nope")
	r.want(t, "meta-data Nope", 2)
	if !strings.Contains(r.stderr, `no agent called "Nope" (storhaug agents lists them)`) {
		t.Errorf("meta-data Nope: stderr %q", r.stderr)
	}
	run(t, nil, bin, "meta-data").want(t, "meta-data (no name)", 2)

	names := needAgents(t)
	links := t.TempDir()
	envs := []struct {
		name string
		env  []string
		v11  bool
	}{
		{"no OCF version (ocf-tester)", nil, false},
		{"OCF 1.0", []string{"OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=0"}, false},
		{"OCF 1.1 (Pacemaker 2.1)", []string{"OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=1"}, true},
	}
	for _, n := range names {
		link := filepath.Join(links, n)
		if err := os.Symlink(bin, link); err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			agent := run(t, e.env, link, "meta-data")
			agent.want(t, n+" meta-data, "+e.name, 0)
			dispatched := run(t, e.env, bin, "agent", n, "meta-data")
			dispatched.want(t, "agent "+n+" meta-data, "+e.name, 0)
			cmd := run(t, e.env, bin, "meta-data", n)
			cmd.want(t, "meta-data "+n+", "+e.name, 0)
			if cmd.stdout != agent.stdout || dispatched.stdout != agent.stdout || cmd.stderr != "" {
				t.Errorf("%s, %s: not what the agent prints:\nstorhaug agent %s meta-data: %s\nstorhaug meta-data %s: %s%s",
					e.name, n, n, firstDiff(agent.stdout, dispatched.stdout), n, firstDiff(agent.stdout, cmd.stdout), cmd.stderr)
			}
			checkMetaDataSchemas(t, n+", "+e.name, []byte(agent.stdout), e.v11)
		}
		// --ocf-1.1 is the same as Pacemaker's environment.
		want := run(t, envs[2].env, link, "meta-data").stdout
		if r := run(t, nil, bin, "meta-data", "--ocf-1.1", n); r.code != 0 || r.stdout != want {
			t.Errorf("meta-data --ocf-1.1 %s: exit %d, differs from the agent's 1.1 meta-data:\n%s%s", n, r.code, r.stdout, r.stderr)
		}
		// Refused, never ignored: a flag after NAME, an unknown flag, a
		// second argument.
		for _, args := range [][]string{{n, "--ocf-1.1"}, {"--ocf-1.2", n}, {n, "extra"}, {"--ocf-1.1", n, "-x"}} {
			r := run(t, nil, append([]string{bin, "meta-data"}, args...)...)
			if r.code == 0 || strings.Contains(r.stdout, "<resource-agent") || r.stderr == "" {
				t.Errorf("meta-data %v: exit %d, stdout %q, stderr %q: want a refusal", args, r.code, r.stdout, r.stderr)
			}
		}
		r := run(t, nil, bin, "meta-data", n, "--ocf-1.1")
		if !strings.Contains(r.stderr, `"--ocf-1.1" after NAME`) {
			t.Errorf("meta-data %s --ocf-1.1: the refusal does not say what is wrong: %q", n, r.stderr)
		}
	}
}

// firstDiff describes where got first differs from want, by line.
func firstDiff(want, got string) string {
	if got == want {
		return "same"
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return fmt.Sprintf("line %d is %q, want %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g), len(w))
}

// checkMetaDataSchemas validates one agent's meta-data against every schema
// that applies to its OCF version: 1.0 against ra-api-1.dtd (ocf-tester) and
// pcs's ocf-1.0.rng, 1.1 against pcs's ocf-1.1.rng and resource-agents'
// metadata.rng. metadata.rng (resource-agents 4.12) lacks OCF 1.1's
// reloadable attribute: the meta-data must be valid against it once the
// reloadable attributes are taken out, and against ExtendedRNG as it is.
func checkMetaDataSchemas(t *testing.T, what string, doc []byte, v11 bool) {
	t.Helper()
	wantVersion := "<version>1.0</version>"
	if v11 {
		wantVersion = "<version>1.1</version>"
	}
	if !bytes.Contains(doc, []byte(wantVersion)) {
		t.Errorf("%s: meta-data lacks %s", what, wantVersion)
	}
	if !v11 {
		if err := ocftest.CheckDTD(t, doc); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if err := ocftest.CheckRNG(t, ocftest.PCSRNG10Path, doc); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if bytes.Contains(doc, []byte(`"Promoted"`)) || bytes.Contains(doc, []byte("reloadable")) {
			t.Errorf("%s: OCF 1.1 names in 1.0 meta-data:\n%s", what, doc)
		}
		return
	}
	if err := ocftest.CheckRNG(t, ocftest.PCSRNG11Path, doc); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	if err := ocftest.CheckRNG(t, ocftest.ExtendedRNG(t), doc); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	stripped := bytes.ReplaceAll(doc, []byte(` reloadable="1"`), nil)
	if err := ocftest.CheckRNG(t, ocftest.RNGPath, stripped); err != nil {
		t.Errorf("%s: without its reloadable attributes: %v", what, err)
	}
	if bytes.Contains(doc, []byte(`"Master"`)) || bytes.Contains(doc, []byte(`"Slave"`)) {
		t.Errorf("%s: OCF 1.0 role names in 1.1 meta-data:\n%s", what, doc)
	}
}

// TestMetaDataAsNobody: meta-data works for an unprivileged user with an
// empty environment (no PATH, no OCF variables), as ocf-tester checks.
func TestMetaDataAsNobody(t *testing.T) {
	names := needAgents(t)
	need.Root(t, "to become nobody")
	root := ocftest.Install(t, ocftest.Binary(t))
	for _, n := range names {
		for _, env := range [][]string{nil, {"OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=1"}} {
			cmd := exec.Command(ocftest.AgentPath(root, n), "meta-data")
			cmd.Dir = "/"
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			r := runCmd(t, cmd, env)
			r.want(t, n+" meta-data as nobody", 0)
			if r.stderr != "" || !strings.Contains(r.stdout, "</resource-agent>") {
				t.Errorf("%s meta-data as nobody: stderr %q, %d bytes", n, r.stderr, len(r.stdout))
			}
		}
	}
}

func TestInstallCommand(t *testing.T) {
	bin := ocftest.Binary(t)
	root := filepath.Join(t.TempDir(), "ocf")
	r := run(t, nil, bin, "install", "--ocf-root", root)
	r.want(t, "install", 0)
	names := agents.Names()
	if got := strings.Count(r.stdout, "\n"); got != len(names) {
		t.Errorf("install reported %d links, want %d:\n%s", got, len(names), r.stdout)
	}
	for _, n := range names {
		if target, err := os.Readlink(filepath.Join(install.Dir(root), n)); err != nil || target != bin {
			t.Errorf("%s -> %q (%v), want %s", n, target, err, bin)
		}
	}
	r = run(t, nil, bin, "install", "--ocf-root", root)
	r.want(t, "install again", 0)
	if r.stdout != "" {
		t.Errorf("second install changed something: %q", r.stdout)
	}
	// --binary names another binary (as make install does for DESTDIR).
	r = run(t, nil, bin, "install", "--ocf-root", root, "--binary", "/usr/sbin/storhaug")
	r.want(t, "install --binary", 0)
	for _, n := range names {
		if target, _ := os.Readlink(filepath.Join(install.Dir(root), n)); target != "/usr/sbin/storhaug" {
			t.Errorf("%s -> %q after --binary", n, target)
		}
	}
	// uninstall of this binary leaves links to another one alone.
	run(t, nil, bin, "uninstall", "--ocf-root", root).want(t, "uninstall (other binary's links)", 0)
	if len(names) > 0 {
		if _, err := os.Lstat(filepath.Join(install.Dir(root), names[0])); err != nil {
			t.Errorf("uninstall removed another binary's link: %v", err)
		}
	}
	r = run(t, nil, bin, "uninstall", "--ocf-root", root, "--binary", "/usr/sbin/storhaug")
	r.want(t, "uninstall", 0)
	if got := strings.Count(r.stdout, "removed "); got != len(names) {
		t.Errorf("uninstall reported %d removals, want %d:\n%s", got, len(names), r.stdout)
	}
	if _, err := os.Stat(install.Dir(root)); !os.IsNotExist(err) {
		t.Errorf("uninstall left %s: %v", install.Dir(root), err)
	}
	// OCF_ROOT is the default for --ocf-root.
	root2 := filepath.Join(t.TempDir(), "ocf2")
	run(t, []string{"OCF_ROOT=" + root2}, bin, "install").want(t, "OCF_ROOT=... install", 0)
	if len(names) > 0 {
		if _, err := os.Lstat(filepath.Join(install.Dir(root2), names[0])); err != nil {
			t.Errorf("install did not use OCF_ROOT: %v", err)
		}
	}
}

func TestDocsCommand(t *testing.T) {
	names := needAgents(t)
	man := need.Tool(t, "man", "man-db")
	bin := ocftest.Binary(t)
	dir := filepath.Join(t.TempDir(), "docs", "agents")
	r := run(t, nil, bin, "docs", "--dir", dir)
	r.want(t, "docs", 0)
	want := []string{"storhaug.8"}
	for _, n := range names {
		want = append(want, n+".md", "ocf_storhaug_"+n+".7")
	}
	slices.Sort(want)
	check := func() map[string][]byte {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		var list []string
		for _, e := range ents {
			list = append(list, e.Name())
			got[e.Name()], _ = os.ReadFile(filepath.Join(dir, e.Name()))
		}
		if !slices.Equal(list, want) {
			t.Errorf("docs wrote %v, want %v (and nothing else)", list, want)
		}
		return got
	}
	first := check()
	for _, n := range names {
		md := string(first[n+".md"])
		if !strings.HasPrefix(md, "# "+n+" (ocf:storhaug:"+n+")") {
			t.Errorf("%s.md starts %q", n, md[:min(len(md), 60)])
		}
		for _, p := range agents.Lookup(n).Params {
			if !strings.Contains(md, "### `"+p.Name+"`") {
				t.Errorf("%s.md lacks %s", n, p.Name)
			}
		}
		{
			cmd := exec.Command(man, "--warnings", "-l", filepath.Join(dir, "ocf_storhaug_"+n+".7"))
			cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=80")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || stderr.Len() > 0 || !bytes.Contains(out, []byte("SUPPORTED PARAMETERS")) {
				t.Errorf("man --warnings -l ocf_storhaug_%s.7: %v\n%s", n, err, stderr.Bytes())
			}
		}
	}
	// storhaug(8): every command of the tree, every agent's page, no roff warnings.
	page := string(first["storhaug.8"])
	for _, c := range command.App().Commands {
		if !c.Hidden && !strings.Contains(page, `\fBstorhaug `+strings.ReplaceAll(c.Name, "-", `\-`)) {
			t.Errorf("storhaug.8 lacks the command %s", c.Name)
		}
	}
	for _, n := range names {
		if !strings.Contains(page, `\fBocf_storhaug_`+n+`\fR(7)`) {
			t.Errorf("storhaug.8 does not refer to ocf_storhaug_%s(7)", n)
		}
	}
	if _, err := exec.LookPath("man"); err == nil {
		cmd := exec.Command("man", "--warnings", "-l", filepath.Join(dir, "storhaug.8"))
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=80")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !bytes.Contains(out, []byte("COMMANDS")) {
			t.Errorf("man --warnings -l storhaug.8: %v\n%s", err, stderr.Bytes())
		}
	}
	run(t, nil, bin, "docs", "--dir", dir).want(t, "docs again", 0)
	second := check()
	for k, v := range first {
		if !bytes.Equal(v, second[k]) {
			t.Errorf("%s differs on a second run", k)
		}
	}
}
