package nsnet

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/storhaug/storhaug/internal/need"
	"github.com/storhaug/storhaug/internal/netnsdo"
)

// addrs lists the global addresses of link name in namespace ns, and
// whether it and lo are up.
func addrs(t *testing.T, ns, name string) (list []string, up, loUp bool) {
	t.Helper()
	err := netnsdo.Do(ns, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		up, loUp = l.Attrs().Flags&net.FlagUp != 0, lo.Attrs().Flags&net.FlagUp != 0
		as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		for _, a := range as {
			if a.IP.IsGlobalUnicast() {
				list = append(list, a.IPNet.String())
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(list)
	return list, up, loUp
}

// A veth from a bridge into a namespace: the namespace end has its name,
// its addresses and the MAC Add returned, and is up, as is lo; SetAddrsUp
// then replaces the addresses.
func TestVethAndSetAddrsUp(t *testing.T) {
	need.Root(t, "to make network namespaces")
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	br, host := "nsnb"+id, "nsnh"+id
	for _, ns := range []string{br, host} {
		if err := NewNamed(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { netns.DeleteNamed(ns) })
	}
	if err := AddBridges(br, "br0"); err != nil {
		t.Fatal(err)
	}
	v := Veth{BridgeNS: br, Bridge: "br0", Port: "v" + id, NS: host, Name: "eth0", Addrs: []string{"198.51.100.7/24", "2001:db8::7/64"}}
	mac, err := v.Add()
	if err != nil {
		t.Fatal(err)
	}
	got, up, loUp := addrs(t, host, "eth0")
	if !slices.Equal(got, []string{"198.51.100.7/24", "2001:db8::7/64"}) || !up || !loUp {
		t.Errorf("eth0: %v up %v, lo up %v", got, up, loUp)
	}
	err = netnsdo.Do(host, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if l.Attrs().HardwareAddr.String() != mac.String() || len(mac) != 6 {
			t.Errorf("eth0's MAC %s, Add returned %s", l.Attrs().HardwareAddr, mac)
		}
		return SetAddrsUp(l, []string{"203.0.113.7/24"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := addrs(t, host, "eth0"); !slices.Equal(got, []string{"203.0.113.7/24"}) {
		t.Errorf("after SetAddrsUp: %v", got)
	}
	err = netnsdo.Do(br, func() error {
		p, err := netlink.LinkByName("v" + id)
		if err != nil {
			return err
		}
		if p.Attrs().MasterIndex == 0 || p.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("bridge end: master %d, flags %v", p.Attrs().MasterIndex, p.Attrs().Flags)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
