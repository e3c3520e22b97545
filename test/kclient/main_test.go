// Package kclient tests storhaug with real kernel clients: user-mode-linux
// guests of the lab (lab.Options.KernelClients) that mount the cluster's
// VIPs with the Linux NFS (v4.2, v4.1, v3) and CIFS (SMB 3.1.1) clients,
// as production clients do, and run test/workload on the mounts.
//
// The package has a lab of its own (prefix $STORHAUG_LAB_PREFIX + "k",
// default "shlabk"): 3 nodes, Pacemaker and D-Bus started, CTDB, Samba and
// Ganesha prepared (ganesha serves NFSv3 too; rpcbind and rpc.statd run on
// every node), one kernel client k1 (198.51.100.151), set up once with
// `storhaug setup` from the shipped sample (one VIP per node). It needs root
// and user-mode-linux; TestMain tears the lab down and fails the run if
// anything is left.
package kclient

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/test/scenario"
)

var fixture struct {
	once     sync.Once
	mu       sync.Mutex
	lab      *lab.Lab
	err      error
	tmp      string
	workload string // the workload binary, host path
	setupAt  time.Duration
}

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "storhaug-kclient-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kclient:", err)
		os.Exit(1)
	}
	fixture.tmp = tmp
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		teardown()
		os.Exit(130)
	}()
	code := m.Run()
	if errs := teardown(); len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "kclient: FAIL: lab teardown: %s\n", strings.Join(errs, "; "))
		if code == 0 {
			code = 1
		}
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

func teardown() []string {
	fixture.mu.Lock()
	defer fixture.mu.Unlock()
	l := fixture.lab
	if l == nil {
		return nil
	}
	fixture.lab = nil
	var errs []string
	if err := l.Down(); err != nil {
		errs = append(errs, err.Error())
	}
	if left := l.Leftovers(); len(left) > 0 {
		errs = append(errs, "left behind: "+strings.Join(left, ", "))
	}
	fmt.Fprintf(os.Stderr, "kclient: lab %s: %s\n", l.Prefix(), l.TimingsString())
	return errs
}

func goBuild(out, pkg string, tags ...string) error {
	gobin := "go"
	if _, err := exec.LookPath(gobin); err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	args := []string{"build"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command(gobin, append(args, "-o", out, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func labPrefix() string {
	p := lab.DefaultPrefix()
	if len(p) > 9 {
		p = p[:9]
	}
	return p + "k"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// stack is the cluster under test: storhaug set up from the shipped sample
// (one VIP per node, at home there).
var stack = scenario.NewStorhaug("../../examples/storhaug.conf")

// kernelLab returns the package's lab, set up by storhaug, bringing it up
// on first use. When the test fails, node logs and the guest's console are
// printed.
func kernelLab(t testing.TB) *lab.Lab {
	t.Helper()
	kernelLabNeeds(t)
	fixture.once.Do(func() {
		fixture.err = bringUp()
	})
	fixture.mu.Lock()
	l, err := fixture.lab, fixture.err
	fixture.mu.Unlock()
	if err != nil {
		t.Fatalf("kernel-client lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			l.DumpLogs(&b, 40)
			for _, g := range l.Guests() {
				fmt.Fprintf(&b, "----- guest %s console -----\n%s\n", g.Name(), g.Console(60))
			}
			t.Logf("lab logs:\n%s", b.String())
		}
	})
	return l
}

// kernelLabNeeds is what a kernel-client lab needs of the host.
func kernelLabNeeds(t testing.TB) {
	t.Helper()
	need.Root(t, "the lab")
	need.File(t, "/usr/bin/linux.uml", "user-mode-linux")
	need.Tool(t, "mount.cifs", "cifs-utils")
	need.Tool(t, "mount.nfs", "nfs-common")
	need.Tool(t, "rpcbind", "rpcbind")
}

// binaries builds, once, the storhaug binary the labs install and the
// workload the guests run.
var buildBinaries = sync.OnceValues(func() ([2]string, error) {
	bin := filepath.Join(fixture.tmp, "storhaug")
	if err := goBuild(bin, "github.com/storhaug/storhaug", ocftest.BuildTags); err != nil {
		return [2]string{}, err
	}
	wl := filepath.Join(fixture.tmp, "workload")
	if err := goBuild(wl, "github.com/storhaug/storhaug/test/workload"); err != nil {
		return [2]string{}, err
	}
	return [2]string{bin, wl}, nil
})

func bringUp() error {
	bin, wl, err := binaries()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{
		Prefix: labPrefix(), Nodes: 3, Clients: 1, KernelClients: 1, NFSv4Only: *benchNFS == "v4", Storhaug: bin,
		Pacemaker: lab.Started, DBus: lab.Started,
		CTDB: lab.Prepared, Samba: lab.Prepared, Ganesha: lab.Prepared,
		Guard: true, Logf: logf,
	})
	fixture.mu.Lock()
	fixture.lab = l
	fixture.mu.Unlock()
	if err != nil {
		return err
	}
	// The guest runs the workload from its own directory of the lab (its
	// /tmp is a tmpfs of its own).
	for _, g := range l.Guests() {
		if err := copyFile(wl, filepath.Join(g.Dir(), "workload")); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := stack.Setup(ctx, l); err != nil {
		return err
	}
	fixture.setupAt = time.Since(t0)
	logf("storhaug set up in %.1fs", fixture.setupAt.Seconds())
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// binaries is the storhaug binary's and the workload's host paths.
func binaries() (bin, workload string, err error) {
	b, err := buildBinaries()
	return b[0], b[1], err
}
