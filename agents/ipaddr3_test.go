package agents_test

// IPaddr3 as Pacemaker runs it: the storhaug binary called through a link
// named IPaddr3, with OCF_RESKEY_* in the environment, acting on network
// namespaces the tests make (internal/nstest) on 198.51.100.0/24 and
// 2001:db8::/64.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/packet"
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

// TestIPaddr3BadInput: every bad value gets the right code and a reason
// naming the parameter; absent things on this node are 7 for a probe and
// 0 for stop.
func TestIPaddr3BadInput(t *testing.T) {
	n := nstest.New(t)
	h := n.AddHost("198.51.100.1/24", "2001:db8::1/64")
	ns := h.Name
	for _, tc := range []struct {
		name   string
		params map[string]string
		action string
		code   int
		reason string // in the exit reason
	}{
		{"malformed ip", map[string]string{"ip": "198.51.100.999"}, "start", 6, "parameter ip:"},
		{"malformed ip validate", map[string]string{"ip": "not-an-ip"}, "validate-all", 6, "parameter ip:"},
		{"prefix out of range", map[string]string{"ip": "198.51.100.50", "cidr_netmask": "33"}, "start", 6, "parameter cidr_netmask:"},
		{"ipv6 prefix out of range", map[string]string{"ip": "2001:db8::50", "cidr_netmask": "129"}, "validate-all", 6, "parameter cidr_netmask:"},
		{"families differ", map[string]string{"ip": "2001:db8::50", "cidr_netmask": "255.255.255.0"}, "start", 6, "parameter cidr_netmask:"},
		{"unknown nic", map[string]string{"ip": "198.51.100.50", "nic": "nosuch0"}, "start", 2, "parameter nic:"},
		{"unknown nic validate", map[string]string{"ip": "198.51.100.50", "nic": "nosuch0"}, "validate-all", 2, "parameter nic:"},
		{"unknown nic probe", map[string]string{"ip": "198.51.100.50", "nic": "nosuch0"}, "monitor", 7, ""},
		{"unknown nic stop", map[string]string{"ip": "198.51.100.50", "nic": "nosuch0"}, "stop", 0, ""},
		{"label too long", map[string]string{"ip": "198.51.100.50", "nic": "eth0", "iflabel": "abcdefghijk"}, "start", 6, "parameter iflabel:"},
		{"link-local without nic", map[string]string{"ip": "fe80::50"}, "start", 6, "parameter nic:"},
		{"negative arp_count", map[string]string{"ip": "198.51.100.50", "arp_count": "-1"}, "start", 6, "parameter arp_count:"},
		{"arp_count not a number", map[string]string{"ip": "198.51.100.50", "arp_count": "many"}, "start", 6, "parameter arp_count:"},
		{"zero arp_interval", map[string]string{"ip": "198.51.100.50", "arp_interval": "0"}, "start", 6, "parameter arp_interval:"},
		{"no interface start", map[string]string{"ip": "203.0.113.5"}, "start", 5, "no interface found"},
		{"no interface probe", map[string]string{"ip": "203.0.113.5"}, "monitor", 7, ""},
		{"no interface stop", map[string]string{"ip": "203.0.113.5"}, "stop", 0, ""},
		{"lvs_support", map[string]string{"ip": "198.51.100.50", "lvs_support": "true"}, "start", 6, "parameter lvs_support:"},
		{"lvs_support monitor", map[string]string{"ip": "198.51.100.50", "lvs_support": "true"}, "monitor", 6, "parameter lvs_support:"},
		{"mac", map[string]string{"ip": "198.51.100.50", "mac": "01:02:03:04:05:06"}, "start", 6, "parameter mac:"},
		{"unique_clone_address", map[string]string{"ip": "198.51.100.50", "unique_clone_address": "yes"}, "start", 6, "parameter unique_clone_address:"},
		{"lvs_ipv6_addrlabel", map[string]string{"ip": "2001:db8::50", "lvs_ipv6_addrlabel": "true"}, "start", 6, "parameter lvs_ipv6_addrlabel:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := map[string]string{"network_namespace": ns}
			for k, v := range tc.params {
				p[k] = v
			}
			a := newIP3(t, p)
			code, out := a.run(tc.action)
			if code != tc.code {
				t.Fatalf("%s: exit %d, want %d\n%s", tc.action, code, tc.code, out)
			}
			if tc.reason != "" && !strings.Contains(lastReason(out), tc.reason) {
				t.Errorf("exit reason %q does not contain %q\n%s", lastReason(out), tc.reason, out)
			}
		})
	}
	t.Run("clone-max 2 (CLUSTERIP)", func(t *testing.T) {
		a := newIP3(t, map[string]string{"ip": "198.51.100.50", "network_namespace": ns})
		code, out := a.run("start", "OCF_RESKEY_CRM_meta_clone_max=2")
		if code != 6 || !strings.Contains(lastReason(out), "CLUSTERIP") {
			t.Errorf("exit %d, reason %q", code, lastReason(out))
		}
	})
	t.Run("ignored parameters warn", func(t *testing.T) {
		a := newIP3(t, map[string]string{"ip": "198.51.100.50", "network_namespace": ns, "arp_sender": "send_arp",
			"send_arp_opts": "-A", "clusterip_hash": "sourceip", "arp_count": "1"})
		out := a.want("start", 0)
		for _, p := range []string{"arp_sender", "send_arp_opts", "clusterip_hash"} {
			if !strings.Contains(out, "WARNING: parameter "+p+" is ignored") {
				t.Errorf("no warning about %s:\n%s", p, out)
			}
		}
		a.want("stop", 0)
	})
	t.Run("missing namespace", func(t *testing.T) {
		a := newIP3(t, map[string]string{"ip": "198.51.100.50", "network_namespace": ns + "-gone"})
		for action, want := range map[string]int{"monitor": 7, "stop": 0, "start": 5} {
			if code, out := a.run(action); code != want {
				t.Errorf("%s: exit %d, want %d\n%s", action, code, want, out)
			}
		}
	})
}

func lastReason(out string) string {
	r := ""
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "ocf-exit-reason:"); ok {
			r = s
		}
	}
	return r
}

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

// capture records the frames of ethertype proto arriving at host h's eth0
// for d.
type captured struct {
	at time.Time
	b  []byte
}

func capture(t *testing.T, h *nstest.Host, proto int, d time.Duration) func() []captured {
	t.Helper()
	var c *packet.Conn
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, proto, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		frames []captured
		done   = make(chan struct{})
	)
	c.SetReadDeadline(time.Now().Add(d))
	go func() {
		defer close(done)
		defer c.Close()
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			frames = append(frames, captured{time.Now(), bytes.Clone(buf[:n])})
			mu.Unlock()
		}
	}()
	return func() []captured {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return frames
	}
}

// TestIPaddr3AnnouncementsIPv4: a second namespace on the bridge sees
// arp_count rounds of a gratuitous ARP request and reply, the first before
// start returns, spaced by arp_interval (the default, 1100 ms).
func TestIPaddr3AnnouncementsIPv4(t *testing.T) {
	n := nstest.New(t)
	owner := n.AddHost("198.51.100.1/24")
	watcher := n.AddHost("198.51.100.2/24")
	vipIP := netip.MustParseAddr("198.51.100.100")
	a := newIP3(t, map[string]string{"ip": vipIP.String(), "network_namespace": owner.Name, "arp_count": "3"})
	wait := capture(t, watcher, 0x0806, 4*time.Second)
	a.want("start", 0)
	returned := time.Now()
	var garps []captured
	for _, f := range wait() {
		b := f.b
		if len(b) >= 42 && bytes.Equal(b[6:12], owner.MAC) && bytes.Equal(b[28:32], vipIP.AsSlice()) {
			garps = append(garps, f)
		}
	}
	if len(garps) != 6 {
		t.Fatalf("saw %d gratuitous ARP frames, want 6 (3 rounds of request + reply)", len(garps))
	}
	if garps[0].at.After(returned) {
		t.Errorf("first round seen %v after start returned", garps[0].at.Sub(returned))
	}
	for i, f := range garps {
		b := f.b
		op := binary.BigEndian.Uint16(b[20:])
		wantOp, wantTHA := uint16(1), []byte{0, 0, 0, 0, 0, 0}
		if i%2 == 1 {
			wantOp, wantTHA = 2, owner.MAC
		}
		if !bytes.Equal(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || op != wantOp ||
			!bytes.Equal(b[22:28], owner.MAC) || !bytes.Equal(b[32:38], wantTHA) || !bytes.Equal(b[38:42], vipIP.AsSlice()) {
			t.Errorf("frame %d: dst %x op %d sha %x spa %x tha %x tpa %x", i, b[0:6], op, b[22:28], b[28:32], b[32:38], b[38:42])
		}
	}
	for r := 1; r < 3; r++ {
		gap := garps[2*r].at.Sub(garps[2*r-2].at)
		if gap < time.Second || gap > 1600*time.Millisecond {
			t.Errorf("round %d came %v after round %d; want 1.1 s (>= 1 s locktime)", r+1, gap, r)
		}
	}

	// arp_count_refresh: each monitor sends that many rounds.
	wait = capture(t, watcher, 0x0806, 3*time.Second)
	if code, out := a.run("monitor", "OCF_RESKEY_arp_count_refresh=2", "OCF_RESKEY_arp_interval=1000"); code != 0 {
		t.Fatalf("monitor with arp_count_refresh: exit %d\n%s", code, out)
	}
	refresh := 0
	for _, f := range wait() {
		if len(f.b) >= 42 && bytes.Equal(f.b[6:12], owner.MAC) && bytes.Equal(f.b[28:32], vipIP.AsSlice()) {
			refresh++
		}
	}
	if refresh != 4 {
		t.Errorf("monitor with arp_count_refresh=2 sent %d ARP frames, want 4", refresh)
	}
	a.want("stop", 0)
}

// TestIPaddr3AnnouncementsIPv6: unsolicited neighbour advertisements, to
// all nodes, hop limit 255, Override without Solicited, with the target
// link-layer address, spaced by arp_interval.
func TestIPaddr3AnnouncementsIPv6(t *testing.T) {
	n := nstest.New(t)
	owner := n.AddHost("2001:db8::1/64")
	watcher := n.AddHost("2001:db8::2/64")
	vipIP := netip.MustParseAddr("2001:db8::100")
	a := newIP3(t, map[string]string{"ip": vipIP.String(), "network_namespace": owner.Name, "arp_count": "3", "arp_interval": "1200"})
	wait := capture(t, watcher, 0x86dd, 6*time.Second)
	a.want("start", 0)
	var nas []captured
	for _, f := range wait() {
		b := f.b
		if len(b) >= 86 && bytes.Equal(b[6:12], owner.MAC) && b[20] == 58 && b[54] == 136 {
			nas = append(nas, f)
		}
	}
	// Count only the advertisements of the VIP (the kernel sends its own
	// for the link-local address).
	var ours []captured
	for _, f := range nas {
		if bytes.Equal(f.b[62:78], vipIP.AsSlice()) {
			ours = append(ours, f)
		}
	}
	if len(ours) != 3 {
		t.Fatalf("saw %d advertisements of %s, want 3", len(ours), vipIP)
	}
	for i, f := range ours {
		b := f.b
		allNodes := netip.MustParseAddr("ff02::1").As16()
		if !bytes.Equal(b[0:6], []byte{0x33, 0x33, 0, 0, 0, 1}) || b[21] != 255 || !bytes.Equal(b[38:54], allNodes[:]) ||
			b[58]&0xe0 != 0x20 || b[78] != 2 || !bytes.Equal(b[80:86], owner.MAC) {
			t.Errorf("advertisement %d: dst %x hop limit %d ip dst %x flags %#x option %x", i, b[0:6], b[21], b[38:54], b[58], b[78:86])
		}
		if i > 0 {
			if gap := f.at.Sub(ours[i-1].at); gap < 1100*time.Millisecond || gap > 1700*time.Millisecond {
				t.Errorf("advertisement %d came %v after the previous; want 1.2 s", i, gap)
			}
		}
	}
	a.want("stop", 0)
}

// neighMAC is the link-layer address host h's neighbour table holds for ip.
func neighMAC(t *testing.T, h *nstest.Host, ip netip.Addr) string {
	t.Helper()
	var mac string
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	h.Do(func() error {
		ns, err := netlink.NeighList(0, fam)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.IP.Equal(net.IP(ip.AsSlice())) && len(n.HardwareAddr) == 6 {
				mac = n.HardwareAddr.String()
			}
		}
		return nil
	})
	return mac
}

// talk sends a UDP datagram from h to ip, so h resolves ip's address.
func talk(t *testing.T, h *nstest.Host, ip netip.Addr) {
	t.Helper()
	err := h.Do(func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(ip, 9).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIPaddr3Move: a client's neighbour entry for the VIP follows the
// address from one namespace to another as soon as start returns on the
// new owner.
func TestIPaddr3Move(t *testing.T) {
	for _, ip := range []string{"198.51.100.100", "2001:db8::100"} {
		t.Run(ip, func(t *testing.T) {
			vipIP := netip.MustParseAddr(ip)
			n := nstest.New(t)
			first := n.AddHost("198.51.100.1/24", "2001:db8::1/64")
			second := n.AddHost("198.51.100.2/24", "2001:db8::2/64")
			client := n.AddHost("198.51.100.3/24", "2001:db8::3/64")
			p := map[string]string{"ip": ip, "nodad": "true", "arp_count": "2"}
			p1, p2 := map[string]string{"network_namespace": first.Name}, map[string]string{"network_namespace": second.Name}
			for k, v := range p {
				p1[k], p2[k] = v, v
			}
			a1, a2 := newIP3(t, p1), newIP3(t, p2)
			a1.want("start", 0)
			deadline := time.Now().Add(3 * time.Second)
			for neighMAC(t, client, vipIP) != first.MAC.String() && time.Now().Before(deadline) {
				talk(t, client, vipIP)
				time.Sleep(50 * time.Millisecond)
			}
			if got := neighMAC(t, client, vipIP); got != first.MAC.String() {
				t.Fatalf("client's entry before the move: %q, want the first owner %s", got, first.MAC)
			}
			a1.want("stop", 0)
			a2.want("start", 0)
			// The first round went out before start returned; give the
			// client's kernel a moment to process it.
			deadline = time.Now().Add(300 * time.Millisecond)
			for neighMAC(t, client, vipIP) != second.MAC.String() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := neighMAC(t, client, vipIP); got != second.MAC.String() {
				t.Fatalf("client's entry after the move: %q, want the new owner %s (first owner %s)", got, second.MAC, first.MAC)
			}
			a2.want("stop", 0)
		})
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
