package e2e

// The lab's own tests: what the other end-to-end tests rely on. They leave
// the shared lab as they found it (nodes recovered, partitions healed,
// daemons they started stopped).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/test/lab"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func nodeNames(l *lab.Lab) []string {
	var out []string
	for _, n := range l.Nodes() {
		out = append(out, n.Name())
	}
	return out
}

// A 3-node cluster with every node online in Pacemaker, hostnames as node
// names, the storhaug provider installed in the nodes and not on the host.
func TestLabClusterUp(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, time.Minute)
	t.Logf("shared lab bring-up: %s", l.TimingsString())

	for _, n := range l.Nodes() {
		s, err := n.CrmMon(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.Online(), []string{"n1", "n2", "n3"}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s sees online %v, want %v", n.Name(), got, want)
		}
		if s.DC == "" || !s.Quorum {
			t.Errorf("%s: DC %q quorum %v", n.Name(), s.DC, s.Quorum)
		}
		r, err := n.Run(ctx, "hostname")
		if err != nil || strings.TrimSpace(r.Stdout) != n.Name() {
			t.Errorf("%s: hostname %q, %v", n.Name(), r.Stdout, err)
		}
		r, err = n.Run(ctx, "crm_node", "--name")
		if err != nil || strings.TrimSpace(r.Stdout) != n.Name() {
			t.Errorf("%s: crm_node --name %q, %v", n.Name(), r.Stdout, err)
		}
	}

	// Run reports exit codes and output.
	n1 := l.Node("n1")
	r, err := n1.Run(ctx, "sh", "-c", "echo out; echo err >&2; exit 7")
	if err == nil || r.Code != 7 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("Run: %+v, %v; want code 7, out, err", r, err)
	}
	// Each node has its own /etc and /run; the shared dir is shared.
	if err := n1.WriteFile("/etc/lab-test", []byte("n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer n1.Run(ctx, "rm", "-f", "/etc/lab-test")
	// A directory the host does not have, in the node's /etc only.
	if err := n1.WriteFile("/etc/lab-test.d/x.conf", []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer n1.Run(ctx, "rm", "-rf", "/etc/lab-test.d")
	if b, err := n1.ReadFile("/etc/lab-test.d/x.conf"); err != nil || string(b) != "x\n" {
		t.Errorf("ReadFile: %q, %v", b, err)
	}
	if _, err := os.Stat("/etc/lab-test.d"); err == nil {
		t.Error("a directory made in n1's /etc is visible on the host")
	}
	if _, err := l.Node("n2").Run(ctx, "test", "-e", "/etc/lab-test"); err == nil {
		t.Error("a file written in n1's /etc is visible in n2")
	}
	if _, err := os.Stat("/etc/lab-test"); err == nil {
		t.Error("a file written in n1's /etc is visible on the host")
	}
	shared := filepath.Join(l.SharedDir(), "lab-test")
	if _, err := n1.Run(ctx, "sh", "-c", "echo hello > "+shared); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(shared)
	if r, err := l.Node("n3").Run(ctx, "cat", shared); err != nil || r.Stdout != "hello\n" {
		t.Errorf("shared dir: n3 reads %q, %v", r.Stdout, err)
	}

	// The client reaches every node over IPv4 and IPv6.
	for _, n := range l.Nodes() {
		for _, a := range []string{n.Addr4(), n.Addr6()} {
			if !reachable(l.Client(1), a) {
				t.Errorf("client cannot reach %s at %s", n.Name(), a)
			}
		}
	}
	// The node sees its own interfaces in /sys, not the host's: eth0 (the
	// client network) and eth1 (the cluster network).
	if r, err := n1.Run(ctx, "ls", "/sys/class/net"); err != nil || strings.Join(strings.Fields(r.Stdout), " ") != "eth0 eth1 lo" {
		t.Errorf("n1 /sys/class/net: %q, %v", r.Stdout, err)
	}

	// The storhaug provider, in every node only.
	if shared := storhaugInstalled(); shared != "" {
		// The nodes run the packaged files: the .deb's version is theirs.
		pkgVersion, err := exec.Command("dpkg-deb", "--field", shared, "Version").Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s Version: %v", shared, err)
		}
		agents := l.Agents()
		if len(agents) == 0 {
			t.Error("no storhaug agents installed")
		}
		for _, n := range l.Nodes() {
			r, err := n.Run(ctx, "ls", "/usr/lib/ocf/resource.d/storhaug")
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Fields(r.Stdout)
			sort.Strings(got)
			if !reflect.DeepEqual(got, agents) {
				t.Errorf("%s: ocf:storhaug agents %v, want %v", n.Name(), got, agents)
			}
			if r, err := n.Run(ctx, "/usr/sbin/storhaug", "version"); err != nil || r.Stdout != string(pkgVersion) {
				t.Errorf("%s: storhaug version: %q, %v; the package's %q", n.Name(), r.Stdout, err, pkgVersion)
			}
			if r, err := n.Run(ctx, "readlink", "/usr/lib/ocf/resource.d/storhaug/IPaddr3"); err != nil || r.Stdout != "../../../../sbin/storhaug\n" {
				t.Errorf("%s: the IPaddr3 agent links to %q (%v), not as the package has it", n.Name(), r.Stdout, err)
			}
			if _, err := n.Run(ctx, "test", "-x", "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"); err != nil {
				t.Errorf("%s: the host's heartbeat provider is hidden: %v", n.Name(), err)
			}
		}
		if _, err := os.Stat("/usr/lib/ocf/resource.d/storhaug"); err == nil && !hostHadStorhaug {
			t.Error("the lab wrote /usr/lib/ocf/resource.d/storhaug on the host")
		}
	}
}

// reachable: a TCP connection from the client to addr port 1 is refused
// (an RST came back) rather than timing out.
func reachable(c *lab.Client, addr string) bool {
	var ok bool
	c.Do(func() error {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "1"), time.Second)
		if err == nil {
			conn.Close()
		}
		ok = err == nil || errors.Is(err, syscall.ECONNREFUSED)
		return nil
	})
	return ok
}

var hostHadStorhaug = func() bool {
	_, err := os.Stat("/usr/lib/ocf/resource.d/storhaug")
	return err == nil
}()

func storhaugInstalled() string { return shared.bin }

// Crash n3: n1 and n2 report it offline within about the token timeout;
// Recover brings it back with its services and without the VIP it had
// before the crash (a booting machine has only its own addresses).
func TestLabCrash(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 3*time.Minute)
	n3, c := l.Node("n3"), l.Client(1)
	const vip4, vip6 = "198.51.100.215", "2001:db8::215"
	vipsAbsent(t, l, vip4, vip6)
	if err := n3.Do(func() error {
		link, err := netlink.LinkByName(n3.Link())
		if err != nil {
			return err
		}
		for _, a := range []string{vip4 + "/24", vip6 + "/64"} {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return err
			}
			addr.Flags = syscall.IFA_F_NODAD
			if err := netlink.AddrAdd(link, addr); err != nil {
				return fmt.Errorf("add %s: %w", a, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reachable(c, vip4) {
		t.Fatalf("the client does not reach %s on n3 before the crash", vip4)
	}
	t0 := time.Now()
	if err := l.Crash("n3"); err != nil {
		t.Fatal(err)
	}
	if n3.Alive() {
		t.Fatal("n3 still alive after Crash")
	}
	token := time.Duration(l.Options().TokenMS) * time.Millisecond
	// corosync declares a node lost after the token timeout plus consensus
	// (1.2 x token); Pacemaker then updates the CIB.
	limit := token + token*12/10 + 3*time.Second
	for _, name := range []string{"n1", "n2"} {
		if err := l.WaitMembership(ctx, name, []string{"n1", "n2"}, limit); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("n3 offline on n1 and n2 after %.2fs (token %s)", time.Since(t0).Seconds(), token)

	t1 := time.Now()
	if err := l.Recover(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	for _, name := range nodeNames(l) {
		if err := l.WaitMembership(ctx, name, nodeNames(l), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("n3 recovered and online everywhere after %.1fs", time.Since(t1).Seconds())
	if !reachable(c, n3.Addr4()) {
		t.Error("the client does not reach the recovered n3")
	}
	vipsAbsent(t, l, vip4, vip6)
}

// Partition n1 from n2+n3: n2 and n3 see their own members and keep
// quorum, and fence n1 (powered off: the lab's stonith-action); Heal joins
// the network again and Recover brings n1 back.
func TestLabPartition(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 3*time.Minute)
	if err := l.Partition([]string{"n2", "n3"}, []string{"n1"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{"n2": {"n2", "n3"}, "n3": {"n2", "n3"}} {
		if err := l.WaitMembership(ctx, name, want, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := l.Node("n2").CrmMon(ctx); err != nil || !s.Quorum {
		t.Errorf("n2+n3 without quorum: %v", err)
	}
	if err := l.WaitFor(ctx, "n1 fenced", 30*time.Second, func() (bool, error) { return !l.Node("n1").Alive(), nil }); err != nil {
		t.Fatal(err)
	}
	// The clients stay with the first group.
	c := l.Client(1)
	if !reachable(c, l.Node("n2").Addr4()) {
		t.Error("client cannot reach n2")
	}
	if reachable(c, l.Node("n1").Addr4()) {
		t.Error("client reaches n1 across the partition")
	}

	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := l.Recover(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	for _, name := range nodeNames(l) {
		if err := l.WaitMembership(ctx, name, nodeNames(l), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

// CutLink: the node's eth0 loses carrier and the others lose it (and fence
// it: it comes back with Recover).
func TestLabCutLink(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 3*time.Minute)
	if err := l.CutLink("n2"); err != nil {
		t.Fatal(err)
	}
	r, err := l.Node("n2").Run(ctx, "cat", "/sys/class/net/eth0/carrier")
	if err != nil || strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("n2 eth0 carrier %q, %v; want 0", r.Stdout, err)
	}
	if err := l.WaitMembership(ctx, "n1", []string{"n1", "n3"}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitFor(ctx, "n2 fenced", 30*time.Second, func() (bool, error) { return !l.Node("n2").Alive(), nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.RestoreLink("n2"); err != nil {
		t.Fatal(err)
	}
	if err := l.Recover(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitMembership(ctx, "n1", nodeNames(l), time.Minute); err != nil {
		t.Fatal(err)
	}
}

// StopCluster/StartCluster: a clean leave and rejoin; KillDaemon kills one
// daemon by pid inside one node.
func TestLabStopStartClusterKillDaemon(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 3*time.Minute)
	if err := l.StopCluster(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	n2 := l.Node("n2")
	if n2.Running("corosync") || n2.Running("pacemakerd") {
		t.Error("corosync or pacemakerd still run on n2")
	}
	if err := l.WaitMembership(ctx, "n1", []string{"n1", "n3"}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.StartCluster(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitMembership(ctx, "n3", nodeNames(l), time.Minute); err != nil {
		t.Fatal(err)
	}

	if !n2.Running("dbus-daemon") {
		t.Fatal("no dbus-daemon on n2")
	}
	c, err := l.KillDaemon("n2", "dbus-daemon")
	if err != nil || c != 1 {
		t.Fatalf("KillDaemon: %d, %v", c, err)
	}
	if err := l.WaitFor(ctx, "dbus-daemon gone", 5*time.Second, func() (bool, error) { return !n2.Running("dbus-daemon"), nil }); err != nil {
		t.Fatal(err)
	}
	if !l.Node("n1").Running("dbus-daemon") || !l.Node("n3").Running("dbus-daemon") {
		t.Error("KillDaemon on n2 killed another node's dbus-daemon")
	}
	if err := n2.Start(ctx, lab.DBus); err != nil {
		t.Fatal(err)
	}
}

// CTDB started by the lab on every node: healthy everywhere; smbd with
// clustering on top: a client lists and reads the share through every node.
func TestLabCTDBSamba(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 4*time.Minute)
	content := "hello over SMB " + time.Now().Format(time.RFC3339Nano) + "\n"
	file := filepath.Join(l.ShareDir(), "lab-hello.txt")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(file)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := l.StopAll(ctx, lab.Samba); err != nil {
			t.Errorf("stop smbd: %v", err)
		}
		if err := l.StopAll(ctx, lab.CTDB); err != nil {
			t.Errorf("stop ctdbd: %v", err)
		}
	})

	t0 := time.Now()
	if err := l.StartAll(ctx, lab.CTDB); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitCTDBHealthy(ctx, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("CTDB healthy on 3 nodes %.1fs after start", time.Since(t0).Seconds())
	for _, n := range l.Nodes() {
		r, err := n.Run(ctx, "ctdb", "status")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Stdout, "OK (THIS NODE)") {
			t.Errorf("%s: ctdb status:\n%s", n.Name(), r.Stdout)
		}
		for _, m := range l.Nodes() {
			if !strings.Contains(r.Stdout, m.Addr4()) {
				t.Errorf("%s: ctdb status does not list %s:\n%s", n.Name(), m.Addr4(), r.Stdout)
			}
		}
		if strings.Count(r.Stdout, " OK") != len(l.Nodes()) {
			t.Errorf("%s: not every node OK:\n%s", n.Name(), r.Stdout)
		}
	}

	t1 := time.Now()
	if err := l.StartAll(ctx, lab.Samba); err != nil {
		t.Fatal(err)
	}
	t.Logf("smbd answering on 3 nodes %.1fs after start", time.Since(t1).Seconds())
	c := l.Client(1)
	for _, n := range l.Nodes() {
		r, err := c.Run(ctx, "smbclient", "//"+n.Addr4()+"/"+lab.ShareName, "-N", "-c", "ls; get lab-hello.txt -")
		if err != nil {
			t.Errorf("smbclient via %s: %v", n.Name(), err)
			continue
		}
		if !strings.Contains(r.Stdout, "lab-hello.txt") || !strings.Contains(r.Stdout, content) {
			t.Errorf("smbclient via %s: listing/content missing:\n%s", n.Name(), r.Stdout)
		}
	}
}

// Ganesha started by the lab on every node (its D-Bus first): a client
// reads an exported file through every node; the grace D-Bus call answers.
func TestLabGanesha(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 3*time.Minute)
	content := "hello over NFS " + time.Now().Format(time.RFC3339Nano) + "\n"
	file := filepath.Join(l.ExportDir(), "lab-hello.txt")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(file)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.StopAll(ctx, lab.Ganesha); err != nil {
			t.Errorf("stop ganesha: %v", err)
		}
	})
	t0 := time.Now()
	if err := l.StartAll(ctx, lab.Ganesha); err != nil {
		t.Fatal(err)
	}
	t.Logf("ganesha answering on 3 nodes %.1fs after start", time.Since(t0).Seconds())

	c := l.Client(1)
	for _, n := range l.Nodes() {
		url := "nfs://" + n.Addr4() + lab.ExportPseudo + "/lab-hello.txt?version=4"
		var r lab.Result
		// Right after start ganesha may still be in its grace period.
		err := l.WaitFor(ctx, "nfs-cat "+url, 60*time.Second, func() (bool, error) {
			var err error
			r, err = c.Run(ctx, "nfs-cat", url)
			return err == nil, err
		})
		if err != nil {
			t.Errorf("via %s: %v", n.Name(), err)
		} else if r.Stdout != content {
			t.Errorf("nfs-cat via %s: %q, want %q", n.Name(), r.Stdout, content)
		}
	}
	for _, n := range l.Nodes() {
		conn, err := n.SystemBus()
		if err != nil {
			t.Fatalf("%s: system bus: %v", n.Name(), err)
		}
		obj := conn.Object("org.ganesha.nfsd", "/org/ganesha/nfsd/admin")
		var inGrace, ok bool
		var msg string
		if err := obj.CallWithContext(ctx, "org.ganesha.nfsd.admin.get_grace", 0).Store(&inGrace, &ok, &msg); err != nil {
			t.Errorf("%s: get_grace: %v", n.Name(), err)
		} else if !ok {
			t.Errorf("%s: get_grace: %s", n.Name(), msg)
		}
		if err := obj.CallWithContext(ctx, "org.ganesha.nfsd.admin.grace", 0, "0:"+n.Addr4()).Store(&ok, &msg); err != nil {
			t.Errorf("%s: grace: %v", n.Name(), err)
		} else if !ok {
			t.Errorf("%s: grace refused: %s", n.Name(), msg)
		}
		conn.Close()
	}
}

// A lab of its own, torn down: nothing is left (no namespace, mount,
// process or file), the host's configuration is untouched, and teardown is
// fast.
func TestLabTeardownLeavesNothing(t *testing.T) {
	need.Root(t, "the lab")
	prefix := lab.DefaultPrefix()
	if len(prefix) > 8 {
		prefix = prefix[:8]
	}
	prefix += "td"
	hostBefore := hostFingerprint(t)
	ctx := ctxFor(t, 3*time.Minute)
	opts := lab.Options{Prefix: prefix, Nodes: 3, Pacemaker: lab.Started, DBus: lab.Started, Ganesha: lab.Started,
		CTDB: lab.Prepared, Samba: lab.Prepared, Guard: true, Storhaug: shared.bin, Logf: t.Logf}
	l, err := lab.Up(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	var pids []int
	for _, n := range l.Nodes() {
		procs, err := n.Procs()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			pids = append(pids, p.HostPid)
		}
	}
	if len(pids) < 3*9 { // init, corosync, pacemakerd + 6, dbus, ganesha
		t.Errorf("only %d processes in the nodes", len(pids))
	}
	left := lab.Leftovers(prefix)
	if len(left) == 0 {
		t.Fatal("Leftovers sees nothing of a running lab")
	}
	// The fence daemon lives as long as the lab (not as long as Up's
	// caller): Leftovers names it, Down ends it.
	if !strings.Contains(strings.Join(left, "\n"), "storhaug-lab-fenced:"+prefix) {
		t.Errorf("Leftovers of a running lab does not name its fence daemon: %v", left)
	}
	t0 := time.Now()
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("bring-up %s; teardown %.2fs", l.TimingsString(), took.Seconds())
	if took > 10*time.Second {
		t.Errorf("teardown took %s, budget 10s", took)
	}
	if left := l.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	for _, pid := range pids {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
			t.Errorf("process %d (%s) of the lab still runs", pid, strings.TrimSpace(string(comm)))
		}
	}
	if _, err := os.Stat(lab.Root(prefix)); err == nil {
		t.Errorf("%s still exists", lab.Root(prefix))
	}
	if got := hostFingerprint(t); got != hostBefore {
		t.Errorf("the host's configuration changed:\nbefore %s\nafter  %s", hostBefore, got)
	}
}

// hostFingerprint lists the host files the lab must never touch.
func hostFingerprint(t *testing.T) string {
	var b strings.Builder
	for _, dir := range []string{"/etc/corosync", "/etc/ctdb", "/etc/samba", "/etc/ganesha", "/usr/lib/ocf/resource.d", "/var/lib/pacemaker/cib", "/usr/sbin/storhaug"} {
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil {
				fmt.Fprintf(&b, "%s:%d:%d ", p, info.Size(), info.ModTime().UnixNano())
			}
			return nil
		})
	}
	return b.String()
}

// ResetCIB removes what a test configured: resources (stopped first),
// constraints, node attributes, failures; the seeded properties stay.
func TestLabResetCIB(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 3*time.Minute)
	for _, x := range []string{
		`<primitive id="lab-d1" class="ocf" provider="pacemaker" type="Dummy"><operations><op id="lab-d1-mon" name="monitor" interval="5s"/></operations></primitive>`,
		// No interface on 2001:db8:ff::/64 in the nodes (203.0.113.0/24 is
		// the cluster network now): start fails everywhere.
		`<primitive id="lab-bad" class="ocf" provider="heartbeat" type="IPaddr2"><instance_attributes id="lab-bad-ia"><nvpair id="lab-bad-ip" name="ip" value="2001:db8:ff::9"/></instance_attributes></primitive>`,
	} {
		if err := l.ApplyCIB(ctx, "resources", x); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.ApplyCIB(ctx, "constraints", `<rsc_location id="lab-d1-pref" rsc="lab-d1" node="n2" score="100"/>`); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Node("n1").Run(ctx, "crm_attribute", "--node", "n3", "--name", "role", "--update", "storage"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Node("n2").Run(ctx, "crm_attribute", "--node", "n2", "--lifetime", "reboot", "--name", "lab-transient", "--update", "1"); err != nil {
		t.Fatal(err)
	}
	err := l.WaitFor(ctx, "lab-d1 on n2 and lab-bad failed", time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		_, tr := s.Attribute("n2", "lab-transient")
		return reflect.DeepEqual(s.RunningOn("lab-d1"), []string{"n2"}) && len(s.FailuresOf("lab-bad")) > 0 && tr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ResetCIB(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	s, err := l.CrmMon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Resources) != 1 || s.Resources[0].ID != lab.FenceResource || len(s.Failures) != 0 || len(s.FailCount) != 0 {
		t.Errorf("after ResetCIB: resources %+v failures %+v failcounts %+v", s.Resources, s.Failures, s.FailCount)
	}
	if v, ok := s.Attribute("n3", "role"); ok {
		t.Errorf("after ResetCIB n3 role=%s", v)
	}
	// attrd forgets a deleted attribute a moment later.
	err = l.WaitFor(ctx, "transient attribute gone", 10*time.Second, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		_, ok := s.Attribute("n2", "lab-transient")
		return !ok, nil
	})
	if err != nil {
		t.Error(err)
	}
	if out, err := l.QueryCIB(ctx, "constraints"); err != nil || strings.Contains(out, "lab-d1") {
		t.Errorf("constraints after ResetCIB: %s %v", out, err)
	}
	if out, err := l.QueryCIB(ctx, "crm_config"); err != nil || !strings.Contains(out, `name="stonith-enabled" value="true"`) {
		t.Errorf("crm_config after ResetCIB: %s %v", out, err)
	}
}
