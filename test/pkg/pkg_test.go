// Package pkg tests storhaug's packages as an admin meets them: the .deb
// passes lintian, installs with dpkg into a throwaway root (the binary runs,
// Pacemaker's pcs describes the agents from the installed files, man shows
// the pages, bash completes) and its removal leaves nothing behind; the .rpm
// holds the same files and names each distribution's dependencies; both
// carry the version the binary reports, and building them again gives the
// same bytes.
//
// The packages come from $STORHAUG_PKGDIR (make test builds them there with
// make deb rpm) or are built by the tests with make into a temporary
// directory. The tests need root (dpkg --root, a mount namespace), dpkg,
// lintian, rpm, pcs and man: scripts/deps.sh installs them.
package pkg

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/need"
)

// Environment of the re-executed test binary that runs a command in a
// mount namespace of its own with the installed files overlaid (nsHelper).
const (
	nsRootEnv = "STORHAUG_PKG_NS_ROOT"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(nsRootEnv); root != "" {
		nsHelper(root, os.Args[1:])
	}
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// debianPackage names the Debian package of each tool the tests run.
var debianPackage = map[string]string{
	"dpkg": "dpkg", "dpkg-deb": "dpkg", "rpm": "rpm", "lintian": "lintian", "make": "make",
	"git": "git", "pcs": "pcs", "man": "man-db", "bash": "bash",
}

// needTools ends the test unless the tools are installed (see package need).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		need.Tool(t, tool, debianPackage[tool])
	}
}

// repoRoot is the storhaug checkout the tests run in.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "packaging", "nfpm.yaml")); err != nil {
		t.Fatalf("not in the storhaug checkout: %v", err)
	}
	return dir
}

// run runs a command, bounded by a deadline, and returns its standard
// output; it fails the test on a non-zero exit.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func runErr(dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

var built struct {
	once     sync.Once
	dir      string // the temporary directory the tests built into, if any
	deb, rpm string
	err      error
}

// buildPackages runs make deb rpm with the packages and everything staged
// for them in dir.
func buildPackages(root, dir string) (deb, rpm string, err error) {
	out, stderr, err := runErr(root, nil, "make", "--no-print-directory", "-s", "deb", "rpm",
		"PKGDIR="+dir, "BIN="+filepath.Join(dir, "storhaug"))
	if err != nil {
		return "", "", fmt.Errorf("make deb rpm: %v\n%s%s", err, out, stderr)
	}
	return findPackages(dir)
}

// findPackages finds the one .deb and the one .rpm in dir.
func findPackages(dir string) (deb, rpm string, err error) {
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(dir, "*.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		return "", "", fmt.Errorf("%s: want one .deb and one .rpm, have %v %v", dir, debs, rpms)
	}
	return debs[0], rpms[0], nil
}

// packages returns the .deb and the .rpm under test.
func packages(t *testing.T) (deb, rpm string) {
	t.Helper()
	root := repoRoot(t)
	built.once.Do(func() {
		if dir := os.Getenv("STORHAUG_PKGDIR"); dir != "" {
			built.deb, built.rpm, built.err = findPackages(dir)
			return
		}
		if built.dir, built.err = os.MkdirTemp("", "storhaug-pkg-"); built.err != nil {
			return
		}
		built.deb, built.rpm, built.err = buildPackages(root, built.dir)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.deb, built.rpm
}

// entry is one file, link or directory of a package.
type entry struct {
	mode   fs.FileMode // permissions and type (fs.ModeDir, fs.ModeSymlink)
	link   string      // a link's target
	sha256 string      // a file's content
	mtime  int64
}

func (e entry) String() string {
	switch {
	case e.mode.IsDir():
		return "dir " + e.mode.Perm().String()
	case e.mode&fs.ModeSymlink != 0:
		return "link -> " + e.link
	}
	return fmt.Sprintf("file %s sha256:%.12s", e.mode.Perm(), e.sha256)
}

// debEntries reads the .deb's data archive (dpkg-deb --fsys-tarfile).
func debEntries(t *testing.T, deb string) map[string]entry {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(run(t, "", nil, "dpkg-deb", "--fsys-tarfile", deb)))
	entries := map[string]entry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		e := entry{mode: fs.FileMode(h.Mode).Perm(), mtime: h.ModTime.Unix()}
		switch h.Typeflag {
		case tar.TypeDir:
			e.mode |= fs.ModeDir
		case tar.TypeSymlink:
			e.mode = fs.ModeSymlink // a link's own permissions mean nothing
			e.link = h.Linkname
		case tar.TypeReg:
			s := sha256.New()
			if _, err := io.Copy(s, tr); err != nil {
				t.Fatal(err)
			}
			e.sha256 = hex.EncodeToString(s.Sum(nil))
		default:
			t.Fatalf("%s: %s: unexpected tar type %q", deb, name, h.Typeflag)
		}
		entries[name] = e
	}
	return entries
}

// rpmEntries reads the .rpm's file list from its header.
func rpmEntries(t *testing.T, rpm string) map[string]entry {
	t.Helper()
	if algo := strings.TrimSpace(run(t, "", nil, "rpm", "-qp", "--qf", "%{FILEDIGESTALGO}", rpm)); algo != "8" {
		t.Fatalf("%s: file digests are algorithm %s, want 8 (SHA-256)", rpm, algo)
	}
	out := run(t, "", nil, "rpm", "-qp", "--qf", `[%{FILENAMES}\t%{FILEMODES}\t%{FILELINKTOS}\t%{FILEDIGESTS}\t%{FILEMTIMES}\n]`, rpm)
	entries := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("rpm -qp: line %q", line)
		}
		mode, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		mtime, _ := strconv.ParseInt(f[4], 10, 64)
		e := entry{mode: fs.FileMode(mode).Perm(), sha256: f[3], mtime: mtime}
		switch mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			e.mode |= fs.ModeDir
		case syscall.S_IFLNK:
			e.mode, e.link = fs.ModeSymlink, f[2]
		case syscall.S_IFREG:
		default:
			t.Fatalf("%s: %s: mode %o", rpm, f[0], mode)
		}
		entries[f[0]] = e
	}
	return entries
}

// agentNames are the agents the binary declares, in the checkout.
func agentNames(t *testing.T, bin string) []string {
	t.Helper()
	names := strings.Fields(run(t, "", nil, bin, "agents"))
	if len(names) == 0 {
		t.Fatal("storhaug agents lists none")
	}
	return names
}

// Directories that other packages of each distribution own (the file
// system's, man's, bash-completion's, the OCF root's): the .deb lists them as
// parents of its files, the .rpm leaves them to their owners.
var distroDirs = []string{
	"/usr", "/usr/lib", "/usr/lib/ocf", "/usr/lib/ocf/resource.d", "/usr/sbin",
	"/usr/share", "/usr/share/bash-completion", "/usr/share/bash-completion/completions",
	"/usr/share/doc", "/usr/share/man", "/usr/share/man/man7", "/usr/share/man/man8",
	"/usr/share/lintian", "/usr/share/lintian/overrides",
}

// Debian's own files: a native package's changelog (an RPM carries its
// changelog in its header) and lintian's overrides.
var debOnly = []string{"/usr/share/doc/storhaug/changelog.gz", "/usr/share/lintian/overrides/storhaug"}

// RPM's own: the licence's text where RPM systems keep licences (Debian
// keeps the GPL's in /usr/share/common-licenses, which the copyright file
// points to).
var rpmOnly = []string{"/usr/share/licenses/storhaug", "/usr/share/licenses/storhaug/LICENSE"}

// TestContents: the .deb holds the binary, one link per agent to it, the man
// pages, the completion, the example configuration and the copyright as
// documentation, and nothing in /etc; the .rpm holds the same files and
// links, byte for byte, and owns its own directories.
func TestContents(t *testing.T) {
	needTools(t, "dpkg-deb", "rpm")
	deb, rpm := packages(t)
	d, r := debEntries(t, deb), rpmEntries(t, rpm)
	bin := filepath.Join(t.TempDir(), "storhaug")
	run(t, "", nil, "dpkg-deb", "-x", deb, filepath.Dir(bin)+"/x")
	if err := os.Rename(filepath.Dir(bin)+"/x/usr/sbin/storhaug", bin); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"/usr/sbin/storhaug":                              "file -rwxr-xr-x",
		"/usr/share/man/man8/storhaug.8.gz":               "file -rw-r--r--",
		"/usr/share/bash-completion/completions/storhaug": "file -rw-r--r--",
		"/usr/share/doc/storhaug/examples/storhaug.conf":  "file -rw-r--r--",
		"/usr/share/doc/storhaug/copyright":               "file -rw-r--r--",
		"/usr/lib/ocf/resource.d/storhaug":                "dir -rwxr-xr-x",
	}
	for _, n := range agentNames(t, bin) {
		want["/usr/lib/ocf/resource.d/storhaug/"+n] = "link -> ../../../../sbin/storhaug"
		want["/usr/share/man/man7/ocf_storhaug_"+n+".7.gz"] = "file -rw-r--r--"
	}
	for p, w := range want {
		e, ok := d[p]
		if !ok {
			t.Errorf(".deb lacks %s", p)
			continue
		}
		if got := e.String(); !strings.HasPrefix(got, w) {
			t.Errorf(".deb %s: %s, want %s", p, got, w)
		}
	}
	example, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "storhaug.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(example); d["/usr/share/doc/storhaug/examples/storhaug.conf"].sha256 != hex.EncodeToString(sum[:]) {
		t.Error(".deb's example configuration is not examples/storhaug.conf")
	}
	for p := range d {
		if strings.HasPrefix(p, "/etc") {
			t.Errorf(".deb installs %s: the admin's configuration is theirs", p)
		}
	}

	// The .rpm: the same files and links; its own directories, not the
	// distribution's.
	for p, de := range d {
		re, ok := r[p]
		switch {
		case de.mode.IsDir() && slices.Contains(distroDirs, p):
			if ok {
				t.Errorf(".rpm owns %s, a directory of the distribution", p)
			}
		case slices.Contains(debOnly, p):
			if ok {
				t.Errorf(".rpm holds %s, a Debian file", p)
			}
		case !ok:
			t.Errorf(".rpm lacks %s (%s in the .deb)", p, de)
		case re.String() != de.String() || re.sha256 != de.sha256:
			t.Errorf("%s: .rpm %s, .deb %s", p, re, de)
		}
	}
	for p, re := range r {
		if _, ok := d[p]; !ok && !slices.Contains(rpmOnly, p) {
			t.Errorf(".rpm holds %s (%s), the .deb does not", p, re)
		}
	}
	licence, err := os.ReadFile(filepath.Join(repoRoot(t), "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(licence); r["/usr/share/licenses/storhaug/LICENSE"].sha256 != hex.EncodeToString(sum[:]) {
		t.Error(".rpm's /usr/share/licenses/storhaug/LICENSE is not LICENSE")
	}
	if lic := run(t, "", nil, "rpm", "-qp", "--qf", "%{LICENSE}", rpm); lic != "GPL-2.0-or-later" {
		t.Errorf(".rpm License: %q", lic)
	}
	for _, p := range debOnly {
		if _, ok := d[p]; !ok {
			t.Errorf(".deb lacks %s", p)
		}
	}
}

// TestMetadata: each package names its distribution's dependencies.
func TestMetadata(t *testing.T) {
	needTools(t, "dpkg-deb", "rpm")
	deb, rpm := packages(t)
	field := func(name string) string {
		return strings.TrimSpace(run(t, "", nil, "dpkg-deb", "--field", deb, name))
	}
	for name, want := range map[string]string{
		"Package":      "storhaug",
		"Depends":      "pacemaker-cli-utils",
		"Recommends":   "resource-agents, ctdb, nfs-ganesha",
		"Section":      "admin",
		"Architecture": runtime.GOARCH,
	} {
		if got := field(name); got != want {
			t.Errorf(".deb %s: %q, want %q", name, got, want)
		}
	}
	var requires []string
	for _, r := range strings.Split(run(t, "", nil, "rpm", "-qp", "--requires", rpm), "\n") {
		if r != "" && !strings.HasPrefix(r, "rpmlib(") {
			requires = append(requires, r)
		}
	}
	if want := []string{"pacemaker-cli"}; !slices.Equal(requires, want) {
		t.Errorf(".rpm requires %q, want %q", requires, want)
	}
	recommends := strings.Fields(run(t, "", nil, "rpm", "-qp", "--recommends", rpm))
	sort.Strings(recommends)
	if want := []string{"ctdb", "nfs-ganesha", "resource-agents"}; !slices.Equal(recommends, want) {
		t.Errorf(".rpm recommends %q, want %q", recommends, want)
	}
}

// TestVersion: both packages carry the version make computes
// (scripts/version.sh), which is the one the packaged binary reports.
func TestVersion(t *testing.T) {
	needTools(t, "dpkg-deb", "rpm", "make", "git")
	deb, rpm := packages(t)
	want := strings.TrimSpace(run(t, repoRoot(t), nil, "make", "--no-print-directory", "-s", "version"))
	if got := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "--field", deb, "Version")); got != want {
		t.Errorf(".deb version %q, make version %q", got, want)
	}
	if got := run(t, "", nil, "rpm", "-qp", "--qf", "%{VERSION}", rpm); got != want {
		t.Errorf(".rpm version %q, make version %q", got, want)
	}
	dir := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-x", deb, dir)
	if got := strings.TrimSpace(run(t, "", nil, filepath.Join(dir, "usr/sbin/storhaug"), "version")); got != want {
		t.Errorf("the packaged storhaug version: %q, make version %q", got, want)
	}
}

// TestReproducible: building the packages again from the same commit gives
// the same bytes, and every file in them has the commit's time.
func TestReproducible(t *testing.T) {
	needTools(t, "dpkg-deb", "rpm", "make", "git")
	deb, rpm := packages(t)
	root := repoRoot(t)
	deb2, rpm2, err := buildPackages(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{deb, deb2}, {rpm, rpm2}} {
		a, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: a second build differs", filepath.Base(p[0]))
		}
	}
	epoch, err := strconv.ParseInt(strings.TrimSpace(run(t, root, nil, "git", "log", "-1", "--format=%ct")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for name, entries := range map[string]map[string]entry{"deb": debEntries(t, deb), "rpm": rpmEntries(t, rpm)} {
		for p, e := range entries {
			if e.mtime != epoch && e.mode&fs.ModeSymlink == 0 {
				t.Errorf(".%s: %s has time %d, the commit's is %d", name, p, e.mtime, epoch)
			}
		}
	}
}

// TestLintian: the .deb passes lintian without errors or warnings.
func TestLintian(t *testing.T) {
	needTools(t, "lintian")
	deb, _ := packages(t)
	out, stderr, err := runErr("", nil, "lintian", "--fail-on", "error,warning", "--pedantic", "--display-info", deb)
	t.Logf("lintian:\n%s", out)
	if err != nil {
		t.Errorf("lintian %s: %v\n%s%s", filepath.Base(deb), err, out, stderr)
	}
}

// dpkgRoot is a throwaway root with an empty dpkg database.
type dpkgRoot string

func newDpkgRoot(t *testing.T) dpkgRoot {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dpkgRoot(root)
}

// dpkg runs dpkg on the throwaway root; its log stays there too.
func (r dpkgRoot) dpkg(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "", nil, "dpkg", append([]string{"--root=" + string(r), "--log=" + r.path("/var/log/dpkg.log")}, args...)...)
}

func (r dpkgRoot) path(p string) string { return filepath.Join(string(r), p) }

// tree lists everything under the root but dpkg's database and log.
func (r dpkgRoot) tree(t *testing.T) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(string(r), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, string(r)), "/")
		if rel == "/var/lib/dpkg" || rel == "/var/log" {
			return fs.SkipDir
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// TestInstall installs the .deb with dpkg into a throwaway root (its
// dependencies are the host's business: --force-depends) and uses it as an
// admin would: dpkg names the package as owner of the agent links, the
// binary and the agents run, pcs describes ocf:storhaug:IPaddr3 from the
// installed files, man finds and renders the pages, bash completes; then
// dpkg -r leaves the root as it was.
func TestInstall(t *testing.T) {
	needTools(t, "dpkg", "pcs", "man", "bash")
	need.Root(t, "dpkg --root, a mount namespace")
	deb, _ := packages(t)
	r := newDpkgRoot(t)
	before := r.tree(t)
	r.dpkg(t, "--force-depends", "--install", deb)

	version := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "--field", deb, "Version"))
	if got := strings.TrimSpace(run(t, "", nil, r.path("/usr/sbin/storhaug"), "version")); got != version {
		t.Errorf("installed storhaug version: %q, the package's %q", got, version)
	}
	// Everything installed is the package's, as dpkg knows it.
	listed := map[string]bool{"/": true}
	for _, p := range strings.Split(strings.TrimSpace(r.dpkg(t, "--listfiles", "storhaug")), "\n") {
		listed[p] = true
	}
	for _, p := range r.tree(t) {
		if !listed[p] && !slices.Contains(before, p) {
			t.Errorf("%s is installed but not listed by dpkg -L storhaug", p)
		}
	}
	agents := agentNames(t, r.path("/usr/sbin/storhaug"))
	for _, n := range agents {
		link := "/usr/lib/ocf/resource.d/storhaug/" + n
		if got := r.dpkg(t, "--search", link); got != "storhaug: "+link+"\n" {
			t.Errorf("dpkg -S %s: %q", link, got)
		}
		// The link is the agent (Pacemaker runs it by this path).
		md := run(t, "", nil, r.path(link), "meta-data")
		if !strings.Contains(md, `<resource-agent name="`+n+`"`) {
			t.Errorf("%s meta-data: %.200s", link, md)
		}
	}

	// pcs, as on a cluster node: in a mount namespace of its own, the
	// installed /usr/lib/ocf/resource.d and /usr/sbin are mounted where
	// Pacemaker looks; the host's stay untouched.
	out, stderr, err := inInstalled(r, "pcs", "resource", "describe", "ocf:storhaug:IPaddr3")
	if err != nil || !strings.Contains(out, "ocf:storhaug:IPaddr3") || !strings.Contains(out, "Resource options:") || !strings.Contains(out, "ip (required)") {
		t.Errorf("pcs resource describe ocf:storhaug:IPaddr3: %v\n%s%s", err, out, stderr)
	}

	// man finds the pages by name in the installed man directory.
	pages := [][2]string{{"8", "storhaug"}}
	for _, n := range agents {
		pages = append(pages, [2]string{"7", "ocf_storhaug_" + n})
	}
	for _, p := range pages {
		out, stderr, err := runErr("", []string{"MANPAGER=cat", "MANWIDTH=80", "LC_ALL=C.UTF-8"},
			"man", "--warnings", "-M", r.path("/usr/share/man"), p[0], p[1])
		if err != nil || stderr != "" || !strings.Contains(out, strings.ToUpper(p[1])+"("+p[0]+")") {
			t.Errorf("man %s %s: %v\n%.300s%s", p[0], p[1], err, out, stderr)
		}
	}

	// bash completes with the installed script.
	completion := r.path("/usr/share/bash-completion/completions/storhaug")
	for line, want := range map[string]string{
		"storhaug con":                   "config",
		"storhaug config ":               "check keys",
		"storhaug meta-data IP":          "IPaddr3",
		"storhaug setup --dry":           "--dry-run",
		"storhaug tickle send --ro":      "--rounds",
		"storhaug agent ganesha":         "ganesha ganesha_trigger",
		"storhaug setup --config /nonex": "",
	} {
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		script := fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; _storhaug; echo "${COMPREPLY[*]}"`,
			completion, quoteWords(words), len(words)-1)
		if got := strings.TrimSpace(run(t, "", nil, "bash", "--norc", "--noprofile", "-c", script)); got != want {
			t.Errorf("completing %q: %q, want %q", line, got, want)
		}
	}

	r.dpkg(t, "--remove", "storhaug")
	if after := r.tree(t); !slices.Equal(after, before) {
		t.Errorf("dpkg -r storhaug left the root changed:\nbefore %v\nafter  %v", before, after)
	}
}

func quoteWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// inInstalled runs a command as on a machine with the package installed:
// the test binary re-executes itself (nsHelper) into a mount namespace of
// its own, shows the root's /usr/lib/ocf/resource.d instead of the host's
// and its /usr/sbin over the host's, and executes the command there.
func inInstalled(r dpkgRoot, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{name}, args...)...)
	cmd.Env = append(os.Environ(), nsRootEnv+"="+string(r))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// nsHelper runs in the re-executed test binary, in its own mount namespace
// (inInstalled starts it with CLONE_NEWNS): it keeps its mounts from
// propagating to the host, mounts the installed directories read-only and
// executes the command.
func nsHelper(root string, argv []string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "pkg test namespace helper:", err)
		os.Exit(125)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fail(fmt.Errorf("making / private: %w", err))
	}
	// The installed providers only (whatever the host has there is hidden),
	// and the installed binary over the host's /usr/sbin (where pcs and
	// crm_resource are).
	ocf := "/usr/lib/ocf/resource.d"
	if err := unix.Mount(filepath.Join(root, ocf), ocf, "", unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		fail(fmt.Errorf("bind mount on %s: %w", ocf, err))
	}
	opts := "lowerdir=" + filepath.Join(root, "/usr/sbin") + ":/usr/sbin"
	if err := unix.Mount("overlay", "/usr/sbin", "overlay", unix.MS_RDONLY, opts); err != nil {
		fail(fmt.Errorf("overlay on /usr/sbin (%s): %w", opts, err))
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fail(err)
	}
	fail(syscall.Exec(path, argv, os.Environ()))
}

// TestVersionScript runs scripts/version.sh in a scratch repository through
// the states a checkout goes through: no tag, a dirty tree, a release tag,
// commits after it, a pre-release tag, a tag that is no version. Every
// version it prints is valid for Debian and RPM, and both order it as
// releases are meant to be ordered.
func TestVersionScript(t *testing.T) {
	needTools(t, "git", "dpkg", "rpm")
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "version.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	git := func(args ...string) string { return strings.TrimSpace(run(t, dir, env, "git", args...)) }
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(data string) string {
		write("file", data)
		git("add", "-A")
		git("commit", "-q", "-m", data)
		return git("rev-parse", "--short=12", "HEAD")
	}
	version := func() string { return strings.TrimSpace(run(t, dir, env, "sh", "version.sh")) }
	git("init", "-q")
	write("version.sh", string(script))

	check := func(what, want string) {
		t.Helper()
		got := version()
		if got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
		if _, stderr, err := runErr("", nil, "dpkg", "--validate-version", got); err != nil {
			t.Errorf("%s: %q is no Debian version: %s", what, got, stderr)
		}
		if strings.ContainsAny(got, "-/ ") {
			t.Errorf("%s: %q is no RPM version", what, got)
		}
	}

	h1 := commit("one")
	h2 := commit("two")
	check("untagged", "0.1.0+git2."+h2)
	write("file", "changed")
	check("untagged, dirty", "0.1.0+git2."+h2+".dirty")
	git("checkout", "-q", "file")
	git("tag", "v0.1.0", h1) // a tag on an earlier commit
	check("one commit after v0.1.0", "0.1.0+git1."+h2)
	git("tag", "-a", "-m", "release", "v0.2.0-rc1")
	check("on v0.2.0-rc1", "0.2.0~rc1")
	h3 := commit("three")
	check("after v0.2.0-rc1", "0.2.0~rc1+git1."+h3)
	git("tag", "v0.2.0")
	check("on v0.2.0", "0.2.0")
	write("file", "changed")
	check("on v0.2.0, dirty", "0.2.0+git0."+h3+".dirty")
	git("checkout", "-q", "file")
	h4 := commit("four")
	check("after v0.2.0", "0.2.0+git1."+h4)

	// Both formats order them as they came (the dirty builds aside: they
	// sort just after their commit).
	order := []string{"0.1.0+git1." + h2, "0.2.0~rc1", "0.2.0~rc1+git1." + h3, "0.2.0", "0.2.0+git1." + h4}
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if _, _, err := runErr("", nil, "dpkg", "--compare-versions", a, "lt", b); err != nil {
			t.Errorf("Debian orders %s after %s", a, b)
		}
		cmp := strings.TrimSpace(run(t, "", nil, "rpm", "--eval", fmt.Sprintf(`%%{lua:print(rpm.vercmp(%q, %q))}`, a, b)))
		if cmp != "-1" {
			t.Errorf("RPM orders %s after %s (vercmp %s)", a, b, cmp)
		}
	}

	git("tag", "v1.2.3_bad")
	if out, _, err := runErr(dir, env, "sh", "version.sh"); err == nil {
		t.Errorf("tag v1.2.3_bad: version.sh printed %q, want an error", out)
	}
}
