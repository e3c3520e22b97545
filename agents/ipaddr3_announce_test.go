package agents_test

// IPaddr3's announcements as other hosts on the link see them: gratuitous ARP,
// unsolicited neighbour advertisements, and a client's neighbour entry when
// the address moves.

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/nstest"
)

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
