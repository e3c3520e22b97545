package e2e

// ocf:storhaug:IPaddr3 under real Pacemaker in the shared lab.

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/test/lab"
)

// labAddrOn reports whether ip is on the node's eth0 (read with netlink in
// the node's namespace).
func labAddrOn(t *testing.T, n *lab.Node, ip string) bool {
	t.Helper()
	found := false
	err := n.Do(func() error {
		as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range as {
			found = found || a.IP.Equal(net.ParseIP(ip))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", n.Name(), err)
	}
	return found
}

// keepers lists the IPaddr3 keeper processes running in the node.
func keepers(t *testing.T, n *lab.Node) []int {
	t.Helper()
	procs, err := n.Procs()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range procs {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.HostPid))
		if err == nil && strings.HasPrefix(string(cmd), "IPaddr3\x00keeper\x00") {
			out = append(out, p.HostPid)
		}
	}
	return out
}

// TestIPaddr3Pacemaker: crm_resource --validate accepts IPaddr3 (and
// refuses a bad ip with the parameter named); Pacemaker starts an IPv4 and
// an IPv6 IPaddr3 with a recurring monitor, which notices the address
// going away (a failure, then recovery); target-role Stopped removes the
// addresses and the keepers, Started brings them back.
func TestIPaddr3Pacemaker(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 4*time.Minute)
	n1 := l.Node("n1")

	r, err := n1.Run(ctx, "crm_resource", "--validate", "--class", "ocf", "--provider", "storhaug", "--agent", "IPaddr3",
		"--option", "ip=198.51.100.213", "--option", "cidr_netmask=24")
	if err != nil {
		t.Fatalf("crm_resource --validate: %v\n%s%s", err, r.Stdout, r.Stderr)
	}
	r, err = n1.Run(ctx, "crm_resource", "--validate", "--class", "ocf", "--provider", "storhaug", "--agent", "IPaddr3",
		"--option", "ip=198.51.100.300")
	if err == nil || !strings.Contains(r.Stdout+r.Stderr, "parameter ip") {
		t.Errorf("crm_resource --validate with a bad ip: %v (code %d)\n%s%s", err, r.Code, r.Stdout, r.Stderr)
	}

	const v4, v6 = "198.51.100.213", "2001:db8::213"
	vipsAbsent(t, l, v4, v6)
	cib := `<group id="vips">
  <primitive id="vip4" class="ocf" provider="storhaug" type="IPaddr3">
    <instance_attributes id="vip4-ia">
      <nvpair id="vip4-ip" name="ip" value="` + v4 + `"/>
      <nvpair id="vip4-mask" name="cidr_netmask" value="24"/>
    </instance_attributes>
    <operations><op id="vip4-mon" name="monitor" interval="2s" timeout="20s"/></operations>
  </primitive>
  <primitive id="vip6" class="ocf" provider="storhaug" type="IPaddr3">
    <instance_attributes id="vip6-ia">
      <nvpair id="vip6-ip" name="ip" value="` + v6 + `"/>
    </instance_attributes>
    <operations><op id="vip6-mon" name="monitor" interval="2s" timeout="20s"/></operations>
  </primitive>
</group>`
	if err := l.ApplyCIB(ctx, "resources", cib); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.ResetCIB(ctxFor(t, 2*time.Minute), 2*time.Minute) })

	var owner *lab.Node
	waitRunning := func(what string) {
		t.Helper()
		err := l.WaitFor(ctx, what, 90*time.Second, func() (bool, error) {
			s, err := l.CrmMon(ctx)
			if err != nil {
				return false, err
			}
			on4, on6 := s.RunningOn("vip4"), s.RunningOn("vip6")
			if len(on4) != 1 || len(on6) != 1 {
				return false, fmt.Errorf("vip4 on %v, vip6 on %v; failures %+v %+v", on4, on6, s.FailuresOf("vip4"), s.FailuresOf("vip6"))
			}
			owner = l.Node(on4[0])
			return labAddrOn(t, owner, v4) && labAddrOn(t, owner, v6), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range l.Nodes() {
			b, _ := n.ReadFile("/var/log/pacemaker/pacemaker.log")
			var lines []string
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "vip") && !strings.Contains(line, "cib_perform_op") || strings.Contains(line, "IPaddr3") {
					lines = append(lines, line)
				}
			}
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("%s: pacemaker.log about the VIPs:\n%s", n.Name(), strings.Join(lines, "\n"))
		}
	})
	waitRunning("vips started")
	t.Logf("vips run on %s", owner.Name())
	for _, n := range l.Nodes() {
		if n != owner && (labAddrOn(t, n, v4) || labAddrOn(t, n, v6)) {
			t.Errorf("%s also has a VIP", n.Name())
		}
	}
	// The client resolves the VIP to the owner's MAC address.
	var ownerMAC string
	owner.Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil {
			ownerMAC = l.Attrs().HardwareAddr.String()
		}
		return err
	})
	c1 := l.Client(1)
	err = l.WaitFor(ctx, "client c1 resolves "+v4, 10*time.Second, func() (bool, error) {
		var mac string
		err := c1.Do(func() error {
			if c, err := net.Dial("udp", net.JoinHostPort(v4, "9")); err == nil {
				c.Write([]byte("x"))
				c.Close()
			}
			ns, err := netlink.NeighList(0, netlink.FAMILY_V4)
			for _, n := range ns {
				if n.IP.Equal(net.ParseIP(v4)) && len(n.HardwareAddr) == 6 {
					mac = n.HardwareAddr.String()
				}
			}
			return err
		})
		return mac == ownerMAC, err
	})
	if err != nil {
		t.Errorf("client's neighbour entry for %s is not the owner's MAC %s: %v", v4, ownerMAC, err)
	}

	// The recurring monitor notices the address going away (once the
	// cluster is idle: a failure reported while a transition is still
	// running is acted on only at the next recheck).
	if r, err := n1.Run(ctx, "crm_resource", "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("crm_resource --wait: %v\n%s%s", err, r.Stdout, r.Stderr)
	}
	if _, err := owner.Run(ctx, "ip", "addr", "del", v4+"/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	err = l.WaitFor(ctx, "monitor failure of vip4 recorded", 30*time.Second, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		for _, f := range s.FailuresOf("vip4") {
			if f.Task == "monitor" && f.ExitCode == 7 {
				return true, nil
			}
		}
		return false, fmt.Errorf("failures: %+v", s.FailuresOf("vip4"))
	})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning("vips recovered after the monitor failure")

	// Stopped, then Started again.
	setRole := func(role string) {
		t.Helper()
		if r, err := n1.Run(ctx, "crm_resource", "--resource", "vips", "--meta", "--set-parameter", "target-role",
			"--parameter-value", role); err != nil {
			t.Fatalf("target-role %s: %v\n%s%s", role, err, r.Stdout, r.Stderr)
		}
	}
	setRole("Stopped")
	err = l.WaitFor(ctx, "vips stopped", time.Minute, func() (bool, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return false, err
		}
		if on := append(s.RunningOn("vip4"), s.RunningOn("vip6")...); len(on) > 0 {
			return false, fmt.Errorf("still on %v", on)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes() {
		if labAddrOn(t, n, v4) || labAddrOn(t, n, v6) {
			t.Errorf("%s still has a VIP after Stopped", n.Name())
		}
		if k := keepers(t, n); len(k) > 0 {
			t.Errorf("%s: IPaddr3 keepers %v still running after Stopped", n.Name(), k)
		}
	}
	setRole("Started")
	waitRunning("vips started again")
	s, err := l.CrmMon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.FailuresOf("vip6") {
		t.Errorf("vip6 failure: %+v", f)
	}
}
