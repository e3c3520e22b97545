package vip

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/nstest"
)

func mustParse(t *testing.T, c Config) Spec {
	t.Helper()
	s, _, err := Parse(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openHost(t *testing.T, h *nstest.Host) *Host {
	t.Helper()
	host, err := Open(h.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(host.Close)
	return host
}

// TestHostIPv4 resolves, adds (twice), checks and removes (twice) an IPv4
// address in a namespace, the interface found from the routes.
func TestHostIPv4(t *testing.T) {
	n := nstest.New(t)
	a := n.AddHost("198.51.100.1/24")
	host := openHost(t, a)

	tg, err := host.Resolve(mustParse(t, Config{IP: "198.51.100.50", IfLabel: "vip"}))
	if err != nil {
		t.Fatal(err)
	}
	if tg.Link != "eth0" || tg.Prefix != 24 || tg.Bcast != netip.MustParseAddr("198.51.100.255") || tg.MAC.String() != a.MAC.String() {
		t.Fatalf("resolved %s /%d brd %s mac %s; want eth0 /24 brd 198.51.100.255 mac %s", tg.Link, tg.Prefix, tg.Bcast, tg.MAC, a.MAC)
	}
	for i, want := range []bool{true, false} {
		added, err := host.Add(tg)
		if err != nil || added != want {
			t.Fatalf("Add #%d = %v, %v; want %v", i+1, added, err, want)
		}
	}
	st, err := host.Lookup(tg.Addr, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Found || st.Link != "eth0" || st.Prefix != 24 || st.Label != "eth0:vip" || !st.LinkUp {
		t.Fatalf("state %+v", st)
	}
	if ok, why := st.Matches(tg); !ok {
		t.Fatalf("Matches: %s", why)
	}
	// Check, the monitor's way: the same, from outside the namespace.
	if c, err := Check(a.Name, tg.Addr, "eth0"); err != nil || !c.Found || c.Label != "eth0:vip" || !c.LinkUp || c.MAC.String() != a.MAC.String() {
		t.Fatalf("Check = %+v, %v", c, err)
	}
	if c, err := Check(a.Name, tg.Addr, "eth1"); err != nil || c.Found {
		t.Fatalf("Check on another interface = %+v, %v; want not found", c, err)
	}
	if _, err := Check("storhaug-no-such-ns", tg.Addr, ""); !errors.Is(err, ErrNoNamespace) {
		t.Fatalf("Check in a missing namespace: %v", err)
	}
	setLink := func(up bool) {
		t.Helper()
		err := a.Do(func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			if up {
				return netlink.LinkSetUp(l)
			}
			return netlink.LinkSetDown(l)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setLink(false)
	if c, err := Check(a.Name, tg.Addr, ""); err != nil || !c.Found || c.LinkUp {
		t.Fatalf("Check with the link down = %+v, %v; want found, link down", c, err)
	}
	setLink(true)
	// What the kernel holds, read independently of Lookup.
	var brd string
	a.Do(func() error {
		l, _ := netlink.LinkByName("eth0")
		as, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, x := range as {
			if x.IP.String() == "198.51.100.50" {
				brd = x.Broadcast.String()
			}
		}
		return nil
	})
	if brd != "198.51.100.255" {
		t.Errorf("broadcast on the host: %q", brd)
	}
	for i, want := range []bool{true, false} {
		removed, err := host.Remove(tg.Addr, 0)
		if err != nil || removed != want {
			t.Fatalf("Remove #%d = %v, %v; want %v", i+1, removed, err, want)
		}
	}
	if st, _ := host.Lookup(tg.Addr, 0, false); st.Found {
		t.Fatal("address still there after Remove")
	}
}

// TestResolveErrors: an unknown nic, no route, a missing namespace, a
// found interface too long for the label.
func TestResolveErrors(t *testing.T) {
	n := nstest.New(t)
	a := n.AddHost("198.51.100.1/24")
	host := openHost(t, a)
	if _, err := host.Resolve(mustParse(t, Config{IP: "198.51.100.50", Nic: "nosuch0"})); !errors.Is(err, ErrNoLink) {
		t.Errorf("unknown nic: %v", err)
	}
	if _, err := host.Resolve(mustParse(t, Config{IP: "203.0.113.5"})); !errors.Is(err, ErrNoInterface) {
		t.Errorf("no route: %v", err)
	}
	// With nic and prefix given, no route is needed.
	if tg, err := host.Resolve(mustParse(t, Config{IP: "203.0.113.5", Nic: "eth0", CIDRNetmask: "28"})); err != nil || tg.Prefix != 28 {
		t.Errorf("nic and prefix given: %+v, %v", tg, err)
	}
	if _, err := Open("storhaug-no-such-ns"); !errors.Is(err, ErrNoNamespace) {
		t.Errorf("missing namespace: %v", err)
	}
}

// TestHostIPv6DAD adds an IPv6 address with duplicate address detection and
// waits for it; then one another host on the bridge already has, which
// must fail as dadfailed.
func TestHostIPv6DAD(t *testing.T) {
	n := nstest.New(t)
	a := n.AddHost("2001:db8::1/64")
	n.AddHost("2001:db8::2/64", "2001:db8::99/64")
	host := openHost(t, a)
	// Let the fresh link finish its own start-up (link-local DAD) first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tg, err := host.Resolve(mustParse(t, Config{IP: "2001:db8::50"}))
	if err != nil {
		t.Fatal(err)
	}
	if tg.Link != "eth0" || tg.Prefix != 64 {
		t.Fatalf("resolved %s/%d", tg.Link, tg.Prefix)
	}
	if _, err := host.Add(tg); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := host.WaitDAD(ctx, tg); err != nil {
		t.Fatalf("WaitDAD: %v", err)
	}
	st, _ := host.Lookup(tg.Addr, 0, false)
	if st.Tentative() || st.DADFailed() || !st.Found {
		t.Fatalf("after WaitDAD: %+v", st)
	}
	t.Logf("DAD took %v", time.Since(t0).Round(time.Millisecond))

	dup, err := host.Resolve(mustParse(t, Config{IP: "2001:db8::99"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := host.Add(dup); err != nil {
		t.Fatal(err)
	}
	if err := host.WaitDAD(ctx, dup); !errors.Is(err, ErrDADFailed) {
		t.Fatalf("WaitDAD on a duplicate: %v, want ErrDADFailed", err)
	}
	st, _ = host.Lookup(dup.Addr, 0, false)
	if ok, why := st.Matches(dup); ok || !st.DADFailed() {
		t.Errorf("duplicate: Matches = %v (%s), flags %#x", ok, why, st.Flags)
	}
}

// TestProbeARP finds another host's address (as arping -D) and not a free
// one.
func TestProbeARP(t *testing.T) {
	n := nstest.New(t)
	a := n.AddHost("198.51.100.1/24")
	b := n.AddHost("198.51.100.2/24", "198.51.100.60/24")
	host := openHost(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	used, err := host.Resolve(mustParse(t, Config{IP: "198.51.100.60"}))
	if err != nil {
		t.Fatal(err)
	}
	mac, err := host.ProbeARP(ctx, used, 2, 500*time.Millisecond)
	if err != nil || mac.String() != b.MAC.String() {
		t.Errorf("probe for an address in use: %v, %v; want %s", mac, err, b.MAC)
	}
	free, _ := host.Resolve(mustParse(t, Config{IP: "198.51.100.61"}))
	t0 := time.Now()
	mac, err = host.ProbeARP(ctx, free, 2, 300*time.Millisecond)
	if err != nil || mac != nil {
		t.Errorf("probe for a free address: %v, %v", mac, err)
	}
	if d := time.Since(t0); d < 500*time.Millisecond {
		t.Errorf("probe for a free address returned after %v: it did not wait", d)
	}
}
