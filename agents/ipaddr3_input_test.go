package agents_test

// IPaddr3's answers to bad parameters and to what is absent on this node.

import (
	"strings"
	"testing"

	"github.com/storhaug/storhaug/internal/nstest"
)

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
