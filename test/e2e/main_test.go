// Package e2e holds storhaug's end-to-end tests: real Pacemaker, Corosync,
// ctdbd, smbd, NFS-Ganesha and D-Bus in the lab cluster (test/lab), with
// real clients. All tests of the package share ONE lab, brought up on first
// use by sharedLab(t) and torn down by TestMain (also when the test binary
// dies: the lab's guard sweeps it).
//
// The shared lab: 3 nodes (n1..n3, 198.51.100.11-13 and 2001:db8::11-13 on
// eth0), one client (c1, .101); storhaug built from this checkout and
// installed as ocf:storhaug:*; corosync+pacemakerd and a private system
// D-Bus STARTED on every node; CTDB, smbd and ganesha only PREPARED
// (ctdb.conf with the cluster lock on the shared dir, nodes, smb.conf with
// clustering and the share "share", ganesha.conf exporting /export), so that
// the storhaug agents can own those daemons under Pacemaker. A test that
// starts daemons itself stops them when it ends; a test may leave CIB
// resources behind (the harness resets the CIB when it ends). When a test
// ends, the harness repairs the lab and FAILS the test for what it leaked:
// daemons still running once the CIB is reset, configuration changed on a
// node it did not crash. A test checks its VIPs absent before it uses them
// (vipsAbsent).
//
// Environment: STORHAUG_LAB_PREFIX (default "shlab") names the lab, so that
// several engineers can run the tests at once; STORHAUG_DEB uses a built
// storhaug .deb (make test passes the one make deb built) instead of
// building one. The lab installs storhaug from the .deb, so every test runs
// the packaged files.
package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/test/lab"
)

var (
	shared struct {
		once     sync.Once
		mu       sync.Mutex
		lab      *lab.Lab
		err      error
		bin      string // the storhaug .deb
		binErr   error
		tmp      string
		downErrs []string
	}
)

func TestMain(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) (code int) {
	tmp, err := os.MkdirTemp("", "storhaug-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	shared.tmp = tmp
	defer os.RemoveAll(tmp)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "e2e: %v: tearing the lab down\n", s)
		teardown()
		os.Exit(130)
	}()
	defer func() {
		if p := recover(); p != nil {
			teardown()
			panic(p)
		}
	}()

	code = m.Run()
	if errs := teardown(); len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: lab teardown: %s\n", strings.Join(errs, "; "))
		if code == 0 {
			code = 1
		}
	}
	return code
}

// teardown takes the shared lab down and checks that nothing is left.
func teardown() []string {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	l := shared.lab
	if l == nil {
		return nil
	}
	shared.lab = nil
	var errs []string
	if err := l.Down(); err != nil {
		errs = append(errs, err.Error())
	}
	if left := l.Leftovers(); len(left) > 0 {
		errs = append(errs, "left behind: "+strings.Join(left, ", "))
	}
	fmt.Fprintf(os.Stderr, "e2e: shared lab %s: %s\n", l.Prefix(), l.TimingsString())
	return errs
}

// buildStorhaug builds storhaug's .deb from this checkout with make deb
// into a temp dir (or takes $STORHAUG_DEB).
func buildStorhaug() (string, error) {
	if b := os.Getenv("STORHAUG_DEB"); b != "" {
		return filepath.Abs(b)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(shared.tmp, "pkg")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-s", "deb", "PKGDIR="+dir, "BIN="+filepath.Join(dir, "storhaug"))
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make deb: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("make deb: want one .deb in %s, have %v", dir, debs)
	}
	return debs[0], nil
}

// sharedOptions are the shared lab's options (see the package comment).
func sharedOptions(bin string) lab.Options {
	return lab.Options{
		Prefix:    lab.DefaultPrefix(),
		Nodes:     3,
		Clients:   1,
		Storhaug:  bin,
		Pacemaker: lab.Started,
		DBus:      lab.Started,
		CTDB:      lab.Prepared,
		Samba:     lab.Prepared,
		Ganesha:   lab.Prepared,
		Guard:     true,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
		},
	}
}

// sharedLab returns the shared lab, bringing it up on first use. It skips
// the test when not root. Before handing the lab out it repairs it (nodes
// back up, partitions healed, links restored, cluster ready), resets the
// CIB (no resources, constraints or node attributes of earlier tests) and
// stops ctdbd/smbd/ganesha.nfsd that an earlier test left running, and
// restores /etc/{ctdb,samba,ganesha} in the nodes as the lab prepared them. When
// the test fails, the tail of every node log is printed.
func sharedLab(t *testing.T) *lab.Lab {
	t.Helper()
	need.Root(t, "the lab")
	shared.once.Do(func() {
		shared.bin, shared.binErr = buildStorhaug()
		if shared.binErr != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\ne2e: the lab comes up without storhaug\n", shared.binErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		l, err := lab.Up(ctx, sharedOptions(shared.bin))
		shared.mu.Lock()
		shared.lab, shared.err = l, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	l, err := shared.lab, shared.err
	shared.mu.Unlock()
	if err != nil {
		t.Fatalf("shared lab: %v", err)
	}
	if l == nil {
		t.Fatal("shared lab: torn down")
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			l.DumpLogs(&b, 30)
			t.Logf("lab logs:\n%s", b.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.Repair(ctx); err != nil {
		t.Fatalf("shared lab: repair: %v", err)
	}
	if err := l.ResetCIB(ctx, 2*time.Minute); err != nil {
		t.Fatalf("shared lab: reset CIB: %v", err)
	}
	if stray, err := l.StopStrays(ctx); err != nil {
		t.Fatalf("shared lab: stop stray daemons: %v", err)
	} else if len(stray) > 0 {
		t.Logf("shared lab: stopped daemons an earlier test left running: %v", stray)
	}
	if changed, err := l.RestoreConfigs(); err != nil {
		t.Fatalf("shared lab: restore configuration: %v", err)
	} else if len(changed) > 0 {
		t.Logf("shared lab: restored configuration an earlier test changed: %v", changed)
	}
	boots := map[string]int{}
	for _, n := range l.Nodes() {
		boots[n.Name()] = n.Pid()
	}
	// Registered last of sharedLab's cleanups but before the test's own:
	// runs after the test has cleaned up after itself.
	t.Cleanup(func() { checkLeaks(t, l, boots) })
	return l
}

// checkLeaks, when a test ends, repairs the lab as the next test needs it
// and FAILS the test for what it left behind: daemons of prepared services
// still running once the CIB is reset (nobody stops them), and changed
// configuration in /etc/{ctdb,samba,ganesha} of a node that ran throughout
// the test. A node the test crashed is repaired without blame: an agent
// killed half-way cannot restore what it changed, as on a real machine.
// boots holds each node's PID 1 when the test began.
func checkLeaks(t *testing.T, l *lab.Lab, boots map[string]int) {
	shared.mu.Lock()
	gone := shared.lab != l
	shared.mu.Unlock()
	if gone {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := l.Repair(ctx); err != nil {
		t.Errorf("after the test: repair the lab: %v", err)
		return
	}
	if err := l.ResetCIB(ctx, 2*time.Minute); err != nil {
		t.Errorf("after the test: reset the CIB: %v", err)
		return
	}
	stray, err := l.StopStrays(ctx)
	if err != nil {
		t.Errorf("after the test: stop stray daemons: %v", err)
	}
	if len(stray) > 0 {
		t.Errorf("LEAK: the test left daemons running that nothing stops (the harness stopped them): %v", stray)
	}
	changed, err := l.RestoreConfigs()
	if err != nil {
		t.Errorf("after the test: restore configuration: %v", err)
	}
	var leaked, rebooted []string
	for _, c := range changed {
		node, _, _ := strings.Cut(c, ":")
		if n := l.Node(node); n != nil && n.Pid() == boots[node] {
			leaked = append(leaked, c)
		} else {
			rebooted = append(rebooted, c)
		}
	}
	if len(leaked) > 0 {
		t.Errorf("LEAK: the test left configuration changed (the harness restored it): %v", leaked)
	}
	if len(rebooted) > 0 {
		t.Logf("restored configuration of nodes the test crashed: %v", rebooted)
	}
}

// vipsAbsent fails the test unless no lab node (running or crashed) and no
// client has any of addrs: a test's VIPs must be its own, never left over.
func vipsAbsent(t *testing.T, l *lab.Lab, addrs ...string) {
	t.Helper()
	for _, n := range l.Nodes() {
		for _, a := range addrs {
			if labAddrOn(t, n, a) {
				t.Fatalf("%s already has %s before the test starts it", n.Name(), a)
			}
		}
	}
	for _, c := range l.Clients() {
		for _, a := range addrs {
			if has, err := nsHasAddr(c.Do, a); err != nil || has {
				t.Fatalf("client %s: has %s: %v, %v", c.Name(), a, has, err)
			}
		}
	}
}

// nsHasAddr reports whether the network namespace do runs in has addr.
func nsHasAddr(do func(func() error) error, addr string) (bool, error) {
	want, err := netip.ParseAddr(addr)
	if err != nil {
		return false, err
	}
	found := false
	err = do(func() error {
		as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		for _, a := range as {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == want {
				found = true
			}
		}
		return err
	})
	return found, err
}

// storhaugBin is the storhaug .deb installed in the shared lab (call it
// after sharedLab); the test fails if it could not be built.
func storhaugBin(t *testing.T) string {
	t.Helper()
	if shared.bin == "" && shared.binErr == nil {
		t.Fatal("storhaugBin: call sharedLab first")
	}
	if shared.binErr != nil {
		t.Fatalf("storhaug package: %v", shared.binErr)
	}
	return shared.bin
}
