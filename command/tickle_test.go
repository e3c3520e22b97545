package command

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/tickle"
)

func tkCLI(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	app := App()
	app.Writer, app.ErrWriter = &out, &errb
	err := app.Run(append([]string{"storhaug"}, args...))
	code = 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// What an admin who gets it wrong is told.
func TestTickleCLIErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tickle", "list"}, 2, "give one address"},
		{[]string{"tickle", "send", "--tickle-dir", dir, "198.51.100.300"}, 2, `"198.51.100.300" is not an IPv4 or IPv6 address`},
		{[]string{"tickle", "send", "198.51.100.10", "--tickle-dir", dir}, 2, "options go before the address"},
		{[]string{"tickle", "send", "198.51.100.10"}, 2, "--tickle-dir is required"},
		{[]string{"tickle", "list", "--tickle-dir", dir, "198.51.100.10"}, 1, "no connection list for 198.51.100.10 in " + dir},
		{[]string{"tickle", "list", "--ports", "99999", "198.51.100.10"}, 2, "--ports"},
		{[]string{"tickle", "list", "--netns", "no-such-ns-tk", "198.51.100.10"}, 2, `no network namespace "no-such-ns-tk"`},
		{[]string{"tickle", "send", "--rounds", "2", "--interval", "100ms", "--tickle-dir", dir, "198.51.100.10"}, 2, "Linux ignores repeats"},
		// Not on this node: the clients' answers would go elsewhere.
		{[]string{"tickle", "send", "--tickle-dir", dir, "198.51.100.99"}, 1, "198.51.100.99 is not on this node"},
	} {
		_, errs, code := tkCLI(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d %q, want %d %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	// A file others may write is refused by name.
	vip := netip.MustParseAddr("198.51.100.10")
	tickle.WriteFile(dir, vip, nil)
	os.Chmod(tickle.Path(dir, vip), 0o666)
	if _, errs, code := tkCLI("tickle", "list", "--tickle-dir", dir, "198.51.100.10"); code != 1 || !strings.Contains(errs, "writable by other users") {
		t.Errorf("world-writable list: exit %d %q", code, errs)
	}
}

// In namespaces: "tickle list --live" on the owner shows its clients; after
// the address moved, "tickle send" from the new owner resets them.
func TestTickleCLIListAndSend(t *testing.T) {
	n := nstest.New(t)
	a := n.AddHost("198.51.100.1/24")
	b := n.AddHost("198.51.100.2/24")
	c := n.AddHost("198.51.100.3/24")
	setVIP := func(h *nstest.Host, up bool) {
		t.Helper()
		err := h.Do(func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			addr, _ := netlink.ParseAddr("198.51.100.10/24")
			if up {
				return netlink.AddrAdd(l, addr)
			}
			return netlink.LinkSetDown(l) // A goes silent, address and all
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setVIP(a, true)
	var ln net.Listener
	if err := a.Do(func() (err error) { ln, err = net.Listen("tcp", "198.51.100.10:4445"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A keeps its side of each connection referenced: a collected
	// net.Conn is closed by its finaliser, and the FIN would end the
	// client's connection before the test does.
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- cn
		}
	}()
	var conns []net.Conn
	if err := c.Do(func() error {
		for range 3 {
			cn, err := (&net.Dialer{KeepAlive: -1}).Dial("tcp", "198.51.100.10:4445")
			if err != nil {
				return err
			}
			conns = append(conns, cn)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	var served []net.Conn
	defer func() {
		for _, cn := range served {
			cn.Close()
		}
	}()
	for range conns { // A's side of each connection exists
		select {
		case cn := <-accepted:
			served = append(served, cn)
		case <-time.After(5 * time.Second):
			t.Fatal("A did not accept the clients' connections")
		}
	}
	out, errs, code := tkCLI("tickle", "list", "--live", "--netns", a.Name, "198.51.100.10")
	if code != 0 || strings.Count(out, "198.51.100.10:4445 198.51.100.3:") != 3 || !strings.Contains(errs, "3 connections to 198.51.100.10 (live on this node)") {
		t.Fatalf("list --live: exit %d\n%s%s", code, out, errs)
	}
	// The list a keeper would have written, then A dies and B has the address.
	dir := filepath.Join(t.TempDir(), "tickle")
	var list []tickle.Conn
	for _, cn := range conns {
		list = append(list, tickle.NewConn(netip.MustParseAddrPort("198.51.100.10:4445"), cn.LocalAddr().(*net.TCPAddr).AddrPort()))
	}
	tickle.WriteFile(dir, netip.MustParseAddr("198.51.100.10"), list)
	setVIP(a, false)
	setVIP(b, true)
	c.Do(func() error { // C forgets A's MAC (announcing is IPaddr3's job)
		l, _ := netlink.LinkByName("eth0")
		ns, _ := netlink.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
		for _, nb := range ns {
			if nb.IP.Equal(net.ParseIP("198.51.100.10")) {
				netlink.NeighDel(&nb)
			}
		}
		return nil
	})
	ended := make(chan error, len(conns))
	for _, cn := range conns {
		go func() { _, err := cn.Read(make([]byte, 1)); ended <- err }()
	}
	if out, errs, code := tkCLI("tickle", "send", "--netns", b.Name, "--tickle-dir", dir, "198.51.100.10"); code != 0 || !strings.Contains(errs, "round 1: 3 of 3 clients of 198.51.100.10 tickled") {
		t.Fatalf("send: exit %d\n%s%s", code, out, errs)
	}
	for range conns {
		select {
		case err := <-ended:
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client: %v, want ECONNRESET", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a client was not reset")
		}
	}
}
