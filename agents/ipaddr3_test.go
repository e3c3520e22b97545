package agents_test

// IPaddr3 as Pacemaker runs it: the storhaug binary called through a link
// named IPaddr3, with OCF_RESKEY_* in the environment, acting on network
// namespaces the tests make (internal/nstest) on 198.51.100.0/24 and
// 2001:db8::/64.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/internal/proc"
)

// ip3 runs IPaddr3 actions with a fixed set of parameters.
type ip3 struct {
	t      *testing.T
	path   string
	state  string
	params map[string]string
}

func newIP3(t *testing.T, params map[string]string) *ip3 {
	t.Helper()
	bin := ocftest.Binary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "IPaddr3")
	if err := os.Symlink(bin, path); err != nil {
		t.Fatal(err)
	}
	a := &ip3{t: t, path: path, state: filepath.Join(dir, "state"), params: params}
	t.Cleanup(func() {
		a.run("stop")
		killKeepers(t, a.state)
	})
	return a
}

// env is the environment of one action: the parameters, a private state
// directory, no syslog.
func (a *ip3) env(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "OCF_ROOT=/usr/lib/ocf", "HA_RSCTMP=" + a.state,
		"HA_LOGFACILITY=none", "OCF_RESOURCE_INSTANCE=ip3test"}
	for k, v := range a.params {
		env = append(env, "OCF_RESKEY_"+k+"="+v)
	}
	return append(env, extra...)
}

// run runs an action and returns its exit code and its standard error.
func (a *ip3) run(action string, extra ...string) (int, string) {
	cmd := exec.Command(a.path, action)
	cmd.Env = a.env(extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	a.t.Fatalf("IPaddr3 %s: %v", action, err)
	return -1, ""
}

// want runs an action and fails the test unless it exits with code.
func (a *ip3) want(action string, code int) string {
	a.t.Helper()
	got, out := a.run(action)
	if got != code {
		a.t.Fatalf("IPaddr3 %s with %v: exit %d, want %d\n%s", action, a.params, got, code, out)
	}
	return out
}

// probe runs a probe (monitor with interval 0) and a recurring monitor.
func (a *ip3) monitors(code int) {
	a.t.Helper()
	for _, iv := range []string{"0", "10000"} {
		if got, out := a.run("monitor", "OCF_RESKEY_CRM_meta_interval="+iv); got != code {
			a.t.Fatalf("monitor (interval %s ms): exit %d, want %d\n%s", iv, got, code, out)
		}
	}
}

// keeperPids returns the pids in the state directory's pidfiles.
func keeperPids(dir string) []int {
	var pids []int
	files, _ := filepath.Glob(filepath.Join(dir, "storhaug-IPaddr3-*.pid"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isKeeperProc(pid int) bool {
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.HasPrefix(string(cmd), "IPaddr3\x00keeper\x00") {
		return false
	}
	return proc.Alive(pid)
}

// killKeepers ends keepers a failed test left behind (only ours: by the
// pidfiles of its own state directory, checked against /proc).
func killKeepers(t *testing.T, dir string) {
	for _, pid := range keeperPids(dir) {
		if isKeeperProc(pid) {
			t.Logf("killing leftover keeper %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// addrOn reads what the kernel holds for ip in host h, independently of
// package vip.
func addrOn(t *testing.T, h *nstest.Host, ip string) (found bool, link, label string, prefix int, flags int) {
	t.Helper()
	err := h.Do(func() error {
		as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.IP.String() == ip {
				l, err := netlink.LinkByIndex(a.LinkIndex)
				if err != nil {
					return err
				}
				found, link, label, flags = true, l.Attrs().Name, a.Label, a.Flags
				prefix, _ = a.Mask.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return
}

// TestIPaddr3Lifecycle runs probe, start, monitor, start again, stop, stop
// again for IPv4 and IPv6, nic given and found, with label and nodad, in a
// namespace named by network_namespace; and checks the kernel's view.
func TestIPaddr3Lifecycle(t *testing.T) {
	nstest.Skip(t)
	for _, tc := range []struct {
		name   string
		params map[string]string
		ip     string
		link   string
		label  string
		prefix int
	}{
		{"ipv4 nic given", map[string]string{"ip": "198.51.100.50", "nic": "eth0", "cidr_netmask": "24"}, "198.51.100.50", "eth0", "eth0", 24},
		{"ipv4 found with label", map[string]string{"ip": "198.51.100.51", "iflabel": "vip1"}, "198.51.100.51", "eth0", "eth0:vip1", 24},
		{"ipv4 dotted mask", map[string]string{"ip": "198.51.100.52", "cidr_netmask": "255.255.255.128"}, "198.51.100.52", "eth0", "eth0", 25},
		{"ipv6 found with DAD", map[string]string{"ip": "2001:db8::50"}, "2001:db8::50", "eth0", "", 64},
		{"ipv6 nic given nodad", map[string]string{"ip": "2001:db8::51", "nic": "eth0", "cidr_netmask": "64", "nodad": "true"}, "2001:db8::51", "eth0", "", 64},
		{"ipv6 deprecated noprefixroute", map[string]string{"ip": "2001:db8::52", "preferred_lft": "0", "noprefixroute": "true", "nodad": "1"}, "2001:db8::52", "eth0", "", 64},
		{"ipv6 link-local", map[string]string{"ip": "fe80::52", "nic": "eth0", "nodad": "yes"}, "fe80::52", "eth0", "", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := nstest.New(t)
			h := n.AddHost("198.51.100.1/24", "2001:db8::1/64")
			// The keeper lives ~4 s (4 later rounds 1 s apart): long enough to
			// be seen, even on a loaded machine.
			p := map[string]string{"network_namespace": h.Name, "arp_count": "5", "arp_interval": "1000"}
			for k, v := range tc.params {
				p[k] = v
			}
			a := newIP3(t, p)
			a.monitors(7)
			a.want("start", 0)
			if pids := keeperPids(a.state); len(pids) != 1 || !isKeeperProc(pids[0]) {
				t.Errorf("keeper pids %v: want one running keeper", pids)
			}
			found, link, label, prefix, flags := addrOn(t, h, tc.ip)
			if !found || link != tc.link || prefix != tc.prefix || tc.label != "" && label != tc.label {
				t.Fatalf("on the host: found %v link %s label %q prefix %d; want %s %q /%d", found, link, label, prefix, tc.link, tc.label, tc.prefix)
			}
			if flags&0x40 != 0 || flags&0x08 != 0 { // tentative, dadfailed
				t.Errorf("address flags %#x after start: still tentative or dadfailed", flags)
			}
			if tc.params["nodad"] != "" && flags&0x02 == 0 {
				t.Errorf("nodad: flags %#x lack IFA_F_NODAD", flags)
			}
			if tc.params["preferred_lft"] == "0" && flags&0x20 == 0 {
				t.Errorf("preferred_lft 0: flags %#x lack IFA_F_DEPRECATED", flags)
			}
			if tc.params["noprefixroute"] != "" && flags&0x200 == 0 {
				t.Errorf("noprefixroute: flags %#x lack IFA_F_NOPREFIXROUTE", flags)
			}
			a.monitors(0)
			a.want("start", 0) // idempotent
			pids := keeperPids(a.state)
			a.want("stop", 0)
			for _, pid := range pids {
				if isKeeperProc(pid) {
					t.Errorf("keeper %d still running after stop", pid)
				}
			}
			if found, _, _, _, _ := addrOn(t, h, tc.ip); found {
				t.Fatal("address still there after stop")
			}
			a.monitors(7)
			a.want("stop", 0) // idempotent
		})
	}
}

// TestIPaddr3Keeper: with arp_bg the later rounds are sent by a keeper in
// a session of its own; stop ends it; it ends by itself after the rounds.
func TestIPaddr3Keeper(t *testing.T) {
	n := nstest.New(t)
	h := n.AddHost("198.51.100.1/24")
	a := newIP3(t, map[string]string{"ip": "198.51.100.70", "network_namespace": h.Name, "arp_count": "3", "arp_interval": "1000"})
	a.want("start", 0)
	pids := keeperPids(a.state)
	if len(pids) != 1 || !isKeeperProc(pids[0]) {
		t.Fatalf("keeper pids %v", pids)
	}
	if sid, err := unixGetsid(pids[0]); err != nil || sid != pids[0] {
		t.Errorf("keeper %d: session %d (%v), want its own session", pids[0], sid, err)
	}
	a.want("stop", 0)
	if isKeeperProc(pids[0]) {
		t.Fatalf("keeper %d still running after stop", pids[0])
	}
	// Left alone, the keeper ends after its rounds (no tickles wanted).
	a.want("start", 0)
	pids = keeperPids(a.state)
	deadline := time.Now().Add(5 * time.Second)
	for len(pids) == 1 && isKeeperProc(pids[0]) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if len(pids) != 1 || isKeeperProc(pids[0]) {
		t.Errorf("keeper %v still running 5 s after 2 rounds of 1 s", pids)
	}
	a.want("stop", 0)

	// arp_bg=false: every round before start returns, no keeper.
	a.params["arp_bg"] = "false"
	t0 := time.Now()
	a.want("start", 0)
	if d := time.Since(t0); d < 2*time.Second {
		t.Errorf("arp_bg=false, 3 rounds 1 s apart: start returned after %v", d)
	}
	if pids := keeperPids(a.state); len(pids) != 0 {
		t.Errorf("arp_bg=false: keeper pids %v", pids)
	}
	a.want("stop", 0)
	delete(a.params, "arp_bg")

	// With tickles wanted the keeper stays, and a monitor restarts it when
	// it is gone.
	a.params["tickle_dir"] = t.TempDir()
	a.want("start", 0)
	pids = keeperPids(a.state)
	if len(pids) != 1 || !isKeeperProc(pids[0]) {
		t.Fatalf("keeper pids %v with tickle_dir", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	for deadline := time.Now().Add(2 * time.Second); isKeeperProc(pids[0]) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	a.monitors(0)
	if again := keeperPids(a.state); len(again) != 1 || again[0] == pids[0] || !isKeeperProc(again[0]) {
		t.Errorf("after the keeper was killed and a monitor ran: keeper pids %v (old %d)", again, pids[0])
	}
	a.want("stop", 0)
	if again := keeperPids(a.state); len(again) != 0 {
		t.Errorf("pidfile left after stop: %v", again)
	}
}

func unixGetsid(pid int) (int, error) { return unix.Getsid(pid) }

// TestIPaddr3MonitorStates: label removed -> 1, link down -> 7 (and 0 with
// check_link_status=false), address on another nic -> 7, dadfailed -> 1.
func TestIPaddr3MonitorStates(t *testing.T) {
	n := nstest.New(t)
	h := n.AddHost("198.51.100.1/24", "2001:db8::1/64")
	a := newIP3(t, map[string]string{"ip": "198.51.100.80", "iflabel": "v", "network_namespace": h.Name, "arp_count": "1"})
	a.want("start", 0)
	// Replace the address with one without the label.
	h.Run(t, "ip", "addr", "del", "198.51.100.80/24", "dev", "eth0")
	h.Run(t, "ip", "addr", "add", "198.51.100.80/24", "dev", "eth0")
	if code, out := a.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != 1 || !strings.Contains(lastReason(out), "label") {
		t.Errorf("label missing: exit %d, reason %q; want 1", code, lastReason(out))
	}
	a.want("start", 0) // repairs it
	if _, _, label, _, _ := addrOn(t, h, "198.51.100.80"); label != "eth0:v" {
		t.Errorf("label after start: %q", label)
	}
	a.monitors(0)
	h.Run(t, "ip", "link", "set", "eth0", "down")
	a.monitors(7)
	if code, out := a.run("monitor", "OCF_RESKEY_check_link_status=false"); code != 0 {
		t.Errorf("link down, check_link_status=false: exit %d\n%s", code, out)
	}
	h.Run(t, "ip", "link", "set", "eth0", "up")
	a.monitors(0)
	a.want("stop", 0)

}

// TestIPaddr3Duplicates: start refuses an address another host on the
// link has (IPv6: duplicate address detection; IPv4 with run_arping: ARP
// probes) and leaves nothing behind; a dadfailed address makes monitor 1.
func TestIPaddr3Duplicates(t *testing.T) {
	n := nstest.New(t)
	h := n.AddHost("198.51.100.1/24", "2001:db8::1/64")
	n.AddHost("2001:db8::2/64", "2001:db8::90/64")
	b := newIP3(t, map[string]string{"ip": "2001:db8::90", "network_namespace": h.Name})
	code, out := b.run("start")
	if code != 1 || !strings.Contains(lastReason(out), "duplicate address detection failed") {
		t.Errorf("start of a duplicate IPv6 address: exit %d, reason %q; want 1 dadfailed", code, lastReason(out))
	}
	if found, _, _, _, _ := addrOn(t, h, "2001:db8::90"); found {
		t.Error("the dadfailed address was left on the interface")
	}
	b.monitors(7)
	// Added by hand, dadfailed: monitor says 1.
	h.Run(t, "ip", "addr", "add", "2001:db8::90/64", "dev", "eth0")
	deadline := time.Now().Add(5 * time.Second)
	for _, _, _, _, flags := addrOn(t, h, "2001:db8::90"); flags&0x08 == 0 && time.Now().Before(deadline); _, _, _, _, flags = addrOn(t, h, "2001:db8::90") {
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, _, _, flags := addrOn(t, h, "2001:db8::90"); flags&0x08 == 0 {
		t.Fatalf("setup: address not dadfailed (flags %#x)", flags)
	}
	if code, out := b.run("monitor", "OCF_RESKEY_CRM_meta_interval=10000"); code != 1 || !strings.Contains(lastReason(out), "dadfailed") {
		t.Errorf("dadfailed: monitor exit %d, reason %q; want 1", code, lastReason(out))
	}
	b.want("stop", 0)

	// run_arping: an IPv4 address another host has.
	n.AddHost("198.51.100.2/24", "198.51.100.91/24")
	c := newIP3(t, map[string]string{"ip": "198.51.100.91", "run_arping": "true", "network_namespace": h.Name})
	if code, out := c.run("start"); code != 1 || !strings.Contains(lastReason(out), "already in use") {
		t.Errorf("run_arping on a used address: exit %d, reason %q", code, lastReason(out))
	}
	if found, _, _, _, _ := addrOn(t, h, "198.51.100.91"); found {
		t.Error("run_arping: the address was added anyway")
	}
}

// TestIPaddr3OCFTester: resource-agents' ocf-tester passes IPaddr3 with
// IPv4 parameters (run inside the namespace) and with IPv6 parameters
// (network_namespace).
func TestIPaddr3OCFTester(t *testing.T) {
	n := nstest.New(t)
	h := n.AddHost("198.51.100.1/24", "2001:db8::1/64")
	root := ocftest.Install(t, ocftest.Binary(t))
	agent := ocftest.AgentPath(root, "IPaddr3")
	state := t.TempDir()
	t.Cleanup(func() { killKeepers(t, state) })
	env := []string{"HA_RSCTMP=" + state, "HA_LOGFACILITY=none"}
	t.Run("ipv4", func(t *testing.T) {
		ocftest.Tester{Params: map[string]string{"ip": "198.51.100.60", "cidr_netmask": "24", "iflabel": "t"},
			Netns: h.Name, Env: env, Timeout: 3 * time.Minute}.Pass(t, agent)
	})
	t.Run("ipv6", func(t *testing.T) {
		ocftest.Tester{Params: map[string]string{"ip": "2001:db8::60", "network_namespace": h.Name},
			Env: env, Timeout: 3 * time.Minute}.Pass(t, agent)
	})
	if found, _, _, _, _ := addrOn(t, h, "198.51.100.60"); found {
		t.Error("ocf-tester left the IPv4 address behind")
	}
}
