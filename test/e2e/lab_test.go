package e2e

// The lab's own tests: what the other end-to-end tests rely on. They leave
// the shared lab as they found it (nodes recovered, partitions healed,
// daemons they started stopped).

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

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

	// The storhaug provider, in every node only.
	if shared := storhaugInstalled(); shared != "" {
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
			if _, err := n.Run(ctx, "/usr/sbin/storhaug", "version"); err != nil {
				t.Errorf("%s: storhaug version: %v", n.Name(), err)
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

var hostHadStorhaug = func() bool {
	_, err := os.Stat("/usr/lib/ocf/resource.d/storhaug")
	return err == nil
}()

func storhaugInstalled() string { return shared.bin }

// Crash n3: n1 and n2 report it offline within about the token timeout;
// Recover brings it back with its services.
func TestLabCrash(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 3*time.Minute)
	t0 := time.Now()
	if err := l.Crash("n3"); err != nil {
		t.Fatal(err)
	}
	if l.Node("n3").Alive() {
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
}

// Partition n1 from n2+n3: each side sees its own members; Heal joins them.
func TestLabPartition(t *testing.T) {
	l := sharedLab(t)
	ctx := ctxFor(t, 3*time.Minute)
	if err := l.Partition([]string{"n2", "n3"}, []string{"n1"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{"n1": {"n1"}, "n2": {"n2", "n3"}, "n3": {"n2", "n3"}} {
		if err := l.WaitMembership(ctx, name, want, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	s, err := l.Node("n1").CrmMon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Quorum {
		t.Error("n1 alone has quorum")
	}
	if s, err = l.Node("n2").CrmMon(ctx); err != nil || !s.Quorum {
		t.Errorf("n2+n3 without quorum: %v", err)
	}
	// The clients stay with the first group.
	c := l.Client(1)
	if _, err := c.Run(ctx, "ping", "-c1", "-W1", l.Node("n2").Addr4()); err != nil {
		t.Errorf("client cannot reach n2: %v", err)
	}
	if _, err := c.Run(ctx, "ping", "-c1", "-W1", l.Node("n1").Addr4()); err == nil {
		t.Error("client reaches n1 across the partition")
	}

	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	for _, name := range nodeNames(l) {
		if err := l.WaitMembership(ctx, name, nodeNames(l), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

// CutLink: the node's eth0 loses carrier and the others lose it.
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
	if err := l.RestoreLink("n2"); err != nil {
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
