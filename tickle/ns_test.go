package tickle

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/nstest"
)

// These tests run the real kernel paths in namespaces: A owns the VIPs and
// serves on them, B takes them over, C runs the clients.

var (
	vip4 = netip.MustParseAddr("198.51.100.10")
	vip6 = netip.MustParseAddr("2001:db8::10")
)

type lab struct {
	a, b, c *nstest.Host
}

func newLab(t *testing.T) *lab {
	n := nstest.New(t)
	l := &lab{
		a: n.AddHost("198.51.100.1/24", "2001:db8::1/64"),
		b: n.AddHost("198.51.100.2/24", "2001:db8::2/64"),
		c: n.AddHost("198.51.100.3/24", "2001:db8::3/64"),
	}
	addVIPs(t, l.a)
	return l
}

func addVIPs(t *testing.T, h *nstest.Host) {
	t.Helper()
	err := h.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		for _, a := range []string{vip4.String() + "/24", vip6.String() + "/64"} {
			addr, _ := netlink.ParseAddr(a)
			addr.Flags |= 0x02 // nodad
			if err := netlink.AddrAdd(link, addr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serve listens on addr in h and keeps every accepted connection open,
// reading until it fails; it returns the listener's address.
func serve(t *testing.T, h *nstest.Host, network, addr string) net.Addr {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) { ln, err = net.Listen(network, addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go io.Copy(io.Discard, c)
		}
	}()
	return ln.Addr()
}

// settle waits until A's side of want connections to vip exists (C's
// last ACK of each handshake is through): on a loaded machine that can
// take longer than the client's dial.
func settle(t *testing.T, h *nstest.Host, vip netip.Addr, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := len(record(t, h, vip, SockDiag, nil))
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to %s on %s, want %d", got, vip, h.Name, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client is one TCP connection from C whose first read error is reported.
type client struct {
	conn net.Conn
	err  chan error
	at   time.Time
}

func dial(t *testing.T, h *nstest.Host, addr string, k int) []*client {
	t.Helper()
	var cs []*client
	err := h.Do(func() error {
		for range k {
			// No keepalive probes: only a tickle may reset a client here.
			c, err := (&net.Dialer{KeepAlive: -1}).Dial("tcp", addr)
			if err != nil {
				return err
			}
			cs = append(cs, &client{conn: c, err: make(chan error, 1)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		t.Cleanup(func() { c.conn.Close() })
		go func() {
			_, err := c.conn.Read(make([]byte, 1))
			c.at = time.Now()
			c.err <- err
		}()
	}
	return cs
}

// waitReset waits up to d for every client to see ECONNRESET and returns the
// latest time one did.
func waitReset(t *testing.T, cs []*client, d time.Duration) time.Time {
	t.Helper()
	deadline := time.After(d)
	var last time.Time
	reset := 0
	for i, c := range cs {
		select {
		case err := <-c.err:
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client %d (%s): read error %v, want ECONNRESET", i, c.conn.LocalAddr(), err)
				continue
			}
			reset++
			if c.at.After(last) {
				last = c.at
			}
		case <-deadline:
			t.Fatalf("only %d of %d clients reset within %v", reset, len(cs), d)
		}
	}
	return last
}

func record(t *testing.T, h *nstest.Host, vip netip.Addr, src Source, log Logger) []Conn {
	t.Helper()
	rec, err := OpenRecorder(h.Name, vip, Ports{}, src, log)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	conns, err := rec.Record()
	if err != nil {
		t.Fatal(err)
	}
	return conns
}

func clientSide(cs []*client, vip netip.Addr, port uint16) []Conn {
	var want []Conn
	for _, c := range cs {
		want = append(want, NewConn(netip.AddrPortFrom(vip, port), c.conn.LocalAddr().(*net.TCPAddr).AddrPort()))
	}
	return Dedup(want)
}

func TestRecordSockDiag(t *testing.T) {
	l := newLab(t)
	serve(t, l.a, "tcp", "198.51.100.10:445")
	serve(t, l.a, "tcp", "[2001:db8::10]:445")
	serve(t, l.a, "tcp", ":2049")            // dual-stack: IPv4 clients appear as ::ffff:a.b.c.d
	serve(t, l.a, "tcp", "198.51.100.1:445") // not on the VIP
	c4 := dial(t, l.c, "198.51.100.10:445", 5)
	c6 := dial(t, l.c, "[2001:db8::10]:445", 4)
	cm := dial(t, l.c, "198.51.100.10:2049", 3)
	dial(t, l.c, "198.51.100.1:445", 2)
	settle(t, l.a, vip4, 8)
	settle(t, l.a, vip6, 4)

	var log logRec
	got4 := record(t, l.a, vip4, SockDiag, &log)
	want4 := Dedup(append(clientSide(c4, vip4, 445), clientSide(cm, vip4, 2049)...))
	if !slices.Equal(got4, want4) {
		t.Errorf("IPv4 VIP:\n got %v\nwant %v", got4, want4)
	}
	got6 := record(t, l.a, vip6, SockDiag, &log)
	if want6 := clientSide(c6, vip6, 445); !slices.Equal(got6, want6) {
		t.Errorf("IPv6 VIP:\n got %v\nwant %v", got6, want6)
	}
	// The port filter.
	rec, _ := OpenRecorder(l.a.Name, vip4, mustPorts(t, "2049"), SockDiag, nil)
	defer rec.Close()
	if got, _ := rec.Record(); !slices.Equal(got, clientSide(cm, vip4, 2049)) {
		t.Errorf("ports=2049: %v", got)
	}
	// auto in a namespace that tracks nothing: sock_diag's list, and one
	// clear warning, once.
	var alog logRec
	arec, err := OpenRecorder(l.a.Name, vip4, Ports{}, Auto, &alog)
	if err != nil {
		t.Fatal(err)
	}
	defer arec.Close()
	for range 3 {
		if got, err := arec.Record(); err != nil || !slices.Equal(got, want4) {
			t.Errorf("auto: %v %v", got, err)
		}
	}
	if len(alog.warns) != 1 || !strings.Contains(alog.warns[0], "conntrack tracks nothing in this network namespace") {
		t.Errorf("warnings: %q", alog.warns)
	}
}

func mustPorts(t *testing.T, s string) Ports {
	p, err := ParsePorts(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRecordConntrack(t *testing.T) {
	l := newLab(t)
	serve(t, l.a, "tcp", "198.51.100.10:445")
	serve(t, l.a, "tcp", "[2001:db8::10]:445")
	// A rule that needs conntrack makes the namespace track, established
	// flows included (picked up mid-connection).
	c4 := dial(t, l.c, "198.51.100.10:445", 3)
	l.a.Run(t, "nft", "add table inet tk; add chain inet tk in { type filter hook input priority 0; }; add rule inet tk in ct state established,related accept")
	c6 := dial(t, l.c, "[2001:db8::10]:445", 2)
	// Not on the VIP: a flow to A's own address.
	serve(t, l.a, "tcp", "198.51.100.1:446")
	dial(t, l.c, "198.51.100.1:446", 2)
	// From the VIP: A's own client socket bound to the VIP (the reply
	// tuple's destination is the VIP).
	out := serve(t, l.c, "tcp", "198.51.100.3:7000")
	var outConn net.Conn
	if err := l.a.Do(func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: vip4.AsSlice()}}
		outConn, err = d.Dial("tcp", out.String())
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer outConn.Close()
	outward := NewConn(outConn.LocalAddr().(*net.TCPAddr).AddrPort(), outConn.RemoteAddr().(*net.TCPAddr).AddrPort())
	// Traffic on the old flows lets conntrack pick them up.
	for _, c := range c4 {
		c.conn.Write([]byte("x"))
	}
	time.Sleep(100 * time.Millisecond)
	for _, tc := range []struct {
		vip  netip.Addr
		want []Conn
	}{{vip4, Dedup(append(clientSide(c4, vip4, 445), outward))}, {vip6, clientSide(c6, vip6, 445)}} {
		var log logRec
		if got := record(t, l.a, tc.vip, Conntrack, &log); !slices.Equal(got, tc.want) {
			t.Errorf("conntrack %s:\n got %v\nwant %v", tc.vip, got, tc.want)
		}
		if len(log.warns) > 0 {
			t.Errorf("warnings with a tracking namespace: %q", log.warns)
		}
		// conntrack alone, without sock_diag: the flows are in its table.
		rec, err := OpenRecorder(l.a.Name, tc.vip, Ports{}, Conntrack, nil)
		if err != nil {
			t.Fatal(err)
		}
		ct, total, err := rec.ct.established(tc.vip)
		ct = slices.Clone(ct)
		rec.Close()
		if err != nil || total == 0 || !slices.Equal(Dedup(ct), tc.want) {
			t.Errorf("conntrack table for %s: %v (total %d) %v", tc.vip, ct, total, err)
		}
	}
}

// The core of the feature: the clients of A's VIPs, tickled from B after B
// took the addresses over, reset at once.
func TestTickleFromNewOwner(t *testing.T) {
	l := newLab(t)
	serve(t, l.a, "tcp", "198.51.100.10:445")
	serve(t, l.a, "tcp", "[2001:db8::10]:445")
	// 2x100 clients: enough for the list to be split over senders.
	const k = 100
	c4 := dial(t, l.c, "198.51.100.10:445", k)
	c6 := dial(t, l.c, "[2001:db8::10]:445", k)
	var conns []Conn
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// A's side of a connection exists once C's last ACK is through.
		conns = append(record(t, l.a, vip4, SockDiag, nil), record(t, l.a, vip6, SockDiag, nil)...)
		if len(conns) == 2*k || time.Now().After(deadline) {
			break
		}
	}
	if len(conns) != 2*k {
		t.Fatalf("recorded %d connections, want %d", len(conns), 2*k)
	}
	// A dies silently; B takes the addresses. (Announcing them is the VIP
	// code's job: here C simply forgets A's MAC.)
	cutLink(t, l.a)
	addVIPs(t, l.b)
	forgetNeighbours(t, l.c)
	s, err := OpenSender(l.b.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	if n, err := s.Tickle(conns); err != nil || n != 2*k {
		t.Fatalf("tickled %d: %v", n, err)
	}
	last := waitReset(t, append(c4, c6...), 2*time.Second)
	t.Logf("%d clients (%d IPv4, %d IPv6) reset, the last %v after the tickles went out", 2*k, k, k, last.Sub(start))
}

// Control: without a tickle, the same clients hang.
func TestNoTickleClientsHang(t *testing.T) {
	l := newLab(t)
	serve(t, l.a, "tcp", "198.51.100.10:445")
	cs := dial(t, l.c, "198.51.100.10:445", 5)
	cutLink(t, l.a)
	addVIPs(t, l.b)
	forgetNeighbours(t, l.c)
	time.Sleep(1500 * time.Millisecond)
	for i, c := range cs {
		select {
		case err := <-c.err:
			t.Errorf("client %d ended without a tickle: %v", i, err)
		default:
		}
	}
}

func TestDestroyLocalSockets(t *testing.T) {
	l := newLab(t)
	serve(t, l.a, "tcp", "198.51.100.10:445")
	serve(t, l.a, "tcp", ":2049")
	serve(t, l.a, "tcp", "[2001:db8::10]:445")
	cs := append(dial(t, l.c, "198.51.100.10:445", 3), dial(t, l.c, "198.51.100.10:2049", 2)...)
	c6 := dial(t, l.c, "[2001:db8::10]:445", 2)
	settle(t, l.a, vip4, 5)
	settle(t, l.a, vip6, 2)
	for _, tc := range []struct {
		vip     netip.Addr
		clients []*client
	}{{vip4, cs}, {vip6, c6}} {
		rec, err := OpenRecorder(l.a.Name, tc.vip, Ports{}, SockDiag, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := rec.Destroy()
		rec.Close()
		if err != nil || n != len(tc.clients) {
			t.Fatalf("%s: destroyed %d of %d: %v", tc.vip, n, len(tc.clients), err)
		}
		waitReset(t, tc.clients, time.Second)
		if left := record(t, l.a, tc.vip, SockDiag, nil); len(left) != 0 {
			t.Errorf("%s: sockets left after destroy: %v", tc.vip, left)
		}
	}
}

func cutLink(t *testing.T, h *nstest.Host) {
	t.Helper()
	err := h.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(link)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func forgetNeighbours(t *testing.T, h *nstest.Host) {
	t.Helper()
	err := h.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			ns, err := netlink.NeighList(link.Attrs().Index, fam)
			if err != nil {
				return err
			}
			for _, n := range ns {
				if a, _ := netip.AddrFromSlice(n.IP); a.Unmap() == vip4 || a == vip6 {
					if err := netlink.NeighDel(&n); err != nil {
						return fmt.Errorf("neigh del %v: %w", n.IP, err)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// conntrack sees what sock_diag cannot: a flow DNATed from VIP:8080 to a
// service on another local address. auto records it (and keeps reading
// conntrack every time); for flows that are all local sockets, auto reads
// conntrack only every ctLocalEvery polls.
func TestRecordConntrackNAT(t *testing.T) {
	l := newLab(t)
	serve(t, l.a, "tcp", "198.51.100.1:80")
	serve(t, l.a, "tcp", "198.51.100.10:445")
	l.a.Run(t, "nft", "add table ip tknat; add chain ip tknat pre { type nat hook prerouting priority -100; }; "+
		"add rule ip tknat pre ip daddr 198.51.100.10 tcp dport 8080 dnat to 198.51.100.1:80")
	local := dial(t, l.c, "198.51.100.10:445", 2)
	settle(t, l.a, vip4, 2)

	rec, err := OpenRecorder(l.a.Name, vip4, Ports{}, Auto, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if got, err := rec.Record(); err != nil || !slices.Equal(got, clientSide(local, vip4, 445)) {
		t.Fatalf("local only: %v %v", got, err)
	}
	if !rec.ctLocalOnly {
		t.Error("auto did not notice that conntrack shows only local sockets")
	}
	for i := range ctLocalEvery - 1 {
		rec.Record()
		if rec.ctSkipped != i+1 {
			t.Fatalf("poll %d: conntrack skipped %d times", i+2, rec.ctSkipped)
		}
	}
	natted := dial(t, l.c, "198.51.100.10:8080", 3)
	time.Sleep(50 * time.Millisecond)
	rec.Record() // the ctLocalEvery-th poll after the last read reads conntrack
	if rec.ctLocalOnly {
		t.Error("auto did not notice the NATed flows")
	}
	want := Dedup(append(clientSide(local, vip4, 445), clientSide(natted, vip4, 8080)...))
	for range 3 {
		if got, err := rec.Record(); err != nil || !slices.Equal(got, want) {
			t.Errorf("with NATed flows:\n got %v\nwant %v (%v)", got, want, err)
		}
	}
	if got := record(t, l.a, vip4, SockDiag, nil); !slices.Equal(got, clientSide(local, vip4, 445)) {
		t.Errorf("sock_diag alone: %v", got)
	}
}

// The agent's order: the takeover is prepared (list read, sockets open)
// before the address is on B, and sent once it is; every recorded client
// resets. Without a list there is nothing to send and no error.
func TestPreparedTakeover(t *testing.T) {
	l := newLab(t)
	serve(t, l.a, "tcp", "198.51.100.10:445")
	cs := dial(t, l.c, "198.51.100.10:445", 30)
	settle(t, l.a, vip4, 30)
	dir := t.TempDir()
	if err := WriteFile(dir, vip4, record(t, l.a, vip4, SockDiag, nil)); err != nil {
		t.Fatal(err)
	}
	cfg := Config{VIP: vip4, Netns: l.b.Name, Dir: dir, StateDir: t.TempDir()}
	p := PrepareTakeover(cfg)
	cutLink(t, l.a)
	addVIPs(t, l.b)
	forgetNeighbours(t, l.c)
	start := time.Now()
	if n, err := p.Send(); n != 30 || err != nil {
		t.Fatalf("Send = %d, %v; want 30 tickled", n, err)
	}
	last := waitReset(t, cs, 2*time.Second)
	t.Logf("30 clients reset, the last %v after Send", last.Sub(start))

	none := Config{VIP: vip6, Netns: l.b.Name, Dir: dir, StateDir: t.TempDir()}
	if n, err := PrepareTakeover(none).Send(); n != 0 || err != nil {
		t.Errorf("Send without a list = %d, %v; want 0, nil", n, err)
	}
	PrepareTakeover(cfg).Close() // abandoned: its sockets are closed once open
}
