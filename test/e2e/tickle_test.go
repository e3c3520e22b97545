package e2e

// Tickle ACKs under real Pacemaker: the TCP clients of an IPaddr3 address
// reset as soon as the address starts on another node after a crash.

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/test/lab"
	"github.com/storhaug/storhaug/tickle"
)

// tkServerSource is the service of the test: it greets each client with
// its node's name and keeps the connection open.
const tkServerSource = `package main

import (
	"io"
	"net"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		panic(err)
	}
	name, _ := os.Hostname()
	for {
		c, err := ln.Accept()
		if err != nil {
			panic(err)
		}
		go func() {
			io.WriteString(c, name+"\n")
			io.Copy(io.Discard, c)
		}()
	}
}
`

type tkLabClient struct {
	addr    string
	conn    net.Conn
	ended   chan error
	endedAt time.Time
}

// tkDial connects from the client namespace and returns the greeting.
func tkDial(c *lab.Client, addr string, deadline time.Time) (net.Conn, string, error) {
	for {
		var conn net.Conn
		err := c.Do(func() (err error) {
			conn, err = (&net.Dialer{Timeout: time.Second, KeepAlive: -1}).Dial("tcp", addr)
			return
		})
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			conn.SetReadDeadline(time.Time{})
			if rerr == nil {
				return conn, strings.TrimSpace(line), nil
			}
			conn.Close()
			err = rerr
		}
		if time.Now().After(deadline) {
			return nil, "", err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTicklePacemakerCrash: a group of an IPv4 and an IPv6 IPaddr3 (with
// tickle_dir on the shared storage) and a TCP service runs on one node, 20
// clients per address connected to it. The node loses its link and crashes
// (so that it sends nothing: no FIN, no RST). Pacemaker starts the group on
// another node; every client is reset (ECONNRESET) within 2 s of its address
// appearing there, and reconnects to the new node's service.
func TestTicklePacemakerCrash(t *testing.T) {
	l := sharedLab(t)
	storhaugBin(t)
	ctx := ctxFor(t, 5*time.Minute)
	const (
		v4, v6 = "198.51.100.220", "2001:db8::220"
		port   = "4445"
		k      = 20
	)
	vipsAbsent(t, l, v4, v6)
	dir := filepath.Join(l.SharedDir(), "tickle-e2e")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := filepath.Join(t.TempDir(), "main.go")
	os.WriteFile(src, []byte(tkServerSource), 0o644)
	server := filepath.Join(dir, "tkserver")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	build := exec.Command(gobin, "build", "-o", server, src)
	build.Env = append(os.Environ(), "GO111MODULE=off", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test service: %v\n%s", err, out)
	}

	cib := fmt.Sprintf(`<group id="tk">
  <primitive id="tkvip4" class="ocf" provider="storhaug" type="IPaddr3">
    <instance_attributes id="tkvip4-ia">
      <nvpair id="tkvip4-ip" name="ip" value="%[1]s"/>
      <nvpair id="tkvip4-mask" name="cidr_netmask" value="24"/>
      <nvpair id="tkvip4-dir" name="tickle_dir" value="%[3]s/lists"/>
    </instance_attributes>
    <operations><op id="tkvip4-mon" name="monitor" interval="5s" timeout="20s"/></operations>
  </primitive>
  <primitive id="tkvip6" class="ocf" provider="storhaug" type="IPaddr3">
    <instance_attributes id="tkvip6-ia">
      <nvpair id="tkvip6-ip" name="ip" value="%[2]s"/>
      <nvpair id="tkvip6-mask" name="cidr_netmask" value="64"/>
      <nvpair id="tkvip6-dir" name="tickle_dir" value="%[3]s/lists"/>
    </instance_attributes>
    <operations><op id="tkvip6-mon" name="monitor" interval="5s" timeout="20s"/></operations>
  </primitive>
  <primitive id="tksvc" class="ocf" provider="heartbeat" type="anything">
    <instance_attributes id="tksvc-ia">
      <nvpair id="tksvc-bin" name="binfile" value="%[4]s"/>
      <nvpair id="tksvc-opts" name="cmdline_options" value=":%[5]s"/>
    </instance_attributes>
    <operations><op id="tksvc-mon" name="monitor" interval="5s" timeout="20s"/></operations>
  </primitive>
</group>`, v4, v6, dir, server, port)
	if err := l.ApplyCIB(ctx, "resources", cib); err != nil {
		t.Fatal(err)
	}
	var crashed *lab.Node
	t.Cleanup(func() {
		l.ResetCIB(ctxFor(t, 2*time.Minute), 2*time.Minute)
		if crashed != nil {
			// The crashed node's namespace keeps the addresses: take them
			// off before the node comes back, then let it come back.
			crashed.Do(func() error {
				link, err := netlink.LinkByName("eth0")
				if err != nil {
					return err
				}
				for _, a := range []string{v4 + "/24", v6 + "/64"} {
					addr, _ := netlink.ParseAddr(a)
					netlink.AddrDel(link, addr)
				}
				return nil
			})
			l.RestoreLink(crashed.Name())
			l.Repair(ctxFor(t, 3*time.Minute))
		}
	})

	running := func(exclude string) (*lab.Node, error) {
		s, err := l.CrmMon(ctx)
		if err != nil {
			return nil, err
		}
		on := s.RunningOn("tksvc")
		if len(on) != 1 || on[0] == exclude {
			return nil, fmt.Errorf("tksvc on %v", on)
		}
		for _, id := range []string{"tkvip4", "tkvip6"} {
			if o := s.RunningOn(id); len(o) != 1 || o[0] != on[0] {
				return nil, fmt.Errorf("%s on %v, tksvc on %v", id, o, on)
			}
		}
		return l.Node(on[0]), nil
	}
	var owner *lab.Node
	err = l.WaitFor(ctx, "group tk started", time.Minute, func() (bool, error) {
		n, err := running("")
		owner = n
		return err == nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tk runs on %s", owner.Name())

	c1 := l.Client(1)
	var clients []*tkLabClient
	for _, a := range []string{net.JoinHostPort(v4, port), net.JoinHostPort(v6, port)} {
		for range k {
			conn, greet, err := tkDial(c1, a, time.Now().Add(20*time.Second))
			if err != nil || greet != owner.Name() {
				diag, _ := owner.Sh(ctx, "ip -br addr; ss -ltnp; ls -la "+dir+"; tail -5 /var/log/pacemaker/pacemaker.log")
				t.Fatalf("client of %s: greeted by %q (%v), want %s\n%s:\n%s", a, greet, err, owner.Name(), owner.Name(), diag.Output())
			}
			c := &tkLabClient{addr: a, conn: conn, ended: make(chan error, 1)}
			t.Cleanup(func() { c.conn.Close() })
			go func() {
				_, err := c.conn.Read(make([]byte, 1))
				c.endedAt = time.Now()
				c.ended <- err
			}()
			clients = append(clients, c)
		}
	}
	// IPaddr3's helper records the connections (every second) in the
	// tickle files: the crash comes once they list every client.
	for _, v := range []string{v4, v6} {
		file := tickle.Path(filepath.Join(dir, "lists"), netip.MustParseAddr(v))
		err := l.WaitFor(ctx, "the clients' connections in "+file, 30*time.Second, func() (bool, error) {
			f, err := os.Open(file)
			if err != nil {
				return false, err
			}
			defer f.Close()
			conns, err := tickle.Decode(f, netip.MustParseAddr(v), nil)
			if err != nil {
				return false, err
			}
			for _, c := range clients {
				if host, _, _ := net.SplitHostPort(c.addr); host != v {
					continue
				}
				local := c.conn.LocalAddr().(*net.TCPAddr).AddrPort()
				want := netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
				if !slices.ContainsFunc(conns, func(x tickle.Conn) bool { return x.Remote == want }) {
					return false, fmt.Errorf("%s not listed (%d listed)", want, len(conns))
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	if err := l.CutLink(owner.Name()); err != nil {
		t.Fatal(err)
	}
	crashed = owner
	if err := l.Crash(owner.Name()); err != nil {
		t.Fatal(err)
	}
	crashAt := time.Now()

	// Watch the addresses appear elsewhere.
	appeared := map[string]time.Time{}
	var newOwner *lab.Node
	deadline := time.Now().Add(90 * time.Second)
	for len(appeared) < 2 && time.Now().Before(deadline) {
		for _, n := range l.Nodes() {
			if n == crashed {
				continue
			}
			for _, v := range []string{v4, v6} {
				if _, ok := appeared[v]; !ok && labAddrOn(t, n, v) {
					appeared[v], newOwner = time.Now(), n
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(appeared) < 2 {
		t.Fatalf("the addresses did not start elsewhere within 90 s of the crash (%v)", appeared)
	}
	t.Logf("%s crashed; %s on %s %v later, %s %v later", crashed.Name(), v4, newOwner.Name(),
		appeared[v4].Sub(crashAt).Round(time.Millisecond), v6, appeared[v6].Sub(crashAt).Round(time.Millisecond))

	for _, c := range clients {
		host, _, _ := net.SplitHostPort(c.addr)
		select {
		case err := <-c.ended:
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client of %s: connection ended with %v, want ECONNRESET", c.addr, err)
			}
			if d := c.endedAt.Sub(appeared[host]); d > 2*time.Second {
				t.Errorf("client of %s reset %v after the address appeared on %s, want within 2 s", c.addr, d, newOwner.Name())
			}
		case <-time.After(time.Until(appeared[host].Add(2 * time.Second))):
			t.Errorf("client of %s not reset within 2 s of the address appearing on %s", c.addr, newOwner.Name())
		}
	}
	// Seen from here: the address is looked for every 20 ms, so a client
	// may be reset before the address is seen (a negative time).
	last := map[string]time.Duration{v4: -time.Hour, v6: -time.Hour}
	for _, c := range clients {
		host, _, _ := net.SplitHostPort(c.addr)
		last[host] = max(last[host], c.endedAt.Sub(appeared[host]))
	}
	t.Logf("%d clients reset; the last client of %s %v after the address was seen on %s, of %s %v (IPv6: seen while tentative, before DAD)",
		len(clients), v4, last[v4].Round(time.Millisecond), newOwner.Name(), v6, last[v6].Round(time.Millisecond))

	err = l.WaitFor(ctx, "group tk started elsewhere", time.Minute, func() (bool, error) {
		n, err := running(crashed.Name())
		if err == nil && n != newOwner {
			return false, fmt.Errorf("tk on %s, addresses on %s", n.Name(), newOwner.Name())
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.conn.Close()
		conn, greet, err := tkDial(c1, c.addr, time.Now().Add(20*time.Second))
		if err != nil || greet != newOwner.Name() {
			t.Fatalf("client of %s reconnected to %q (%v), want %s", c.addr, greet, err, newOwner.Name())
		}
		conn.Close()
	}
}
