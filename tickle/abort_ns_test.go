package tickle

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/nstest"
)

// peerConns lists h's established connections with peer, as sock_diag
// reports them.
func peerConns(t *testing.T, h *nstest.Host, peer netip.Addr) [][2]netip.AddrPort {
	t.Helper()
	var out [][2]netip.AddrPort
	err := h.Do(func() error {
		d, err := dialSockDiag()
		if err != nil {
			return err
		}
		defer d.Close()
		return d.withPeer(peer, func(s *diagSocket) { out = append(out, [2]netip.AddrPort{s.local, s.peer}) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A holds connections with B on port 4379 both ways (B dialled A's port,
// A dialled B's), one with B on another port, and one with C on 4379.
// AbortPeer(B, 4379) in A destroys exactly the first three: both ends
// see them fail, the others stay.
func TestAbortPeer(t *testing.T) {
	n := nstest.New(t)
	a := n.AddHost("198.51.100.1/24", "2001:db8::1/64")
	b := n.AddHost("198.51.100.2/24", "2001:db8::2/64")
	c := n.AddHost("198.51.100.3/24", "2001:db8::3/64")
	pb, pc := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	serve(t, a, "tcp", ":4379") // dual-stack: B's IPv4 connections are ::ffff:198.51.100.2 here
	serve(t, a, "tcp", "198.51.100.1:445")
	serve(t, b, "tcp", "198.51.100.2:4379")
	in := dial(t, b, "198.51.100.1:4379", 2)
	out := dial(t, a, "198.51.100.2:4379", 1)
	other := dial(t, b, "198.51.100.1:445", 1)
	third := dial(t, c, "198.51.100.1:4379", 1)
	deadline := time.Now().Add(5 * time.Second)
	for len(peerConns(t, a, pb)) < 4 || len(peerConns(t, a, pc)) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("A's connections: with B %v, with C %v", peerConns(t, a, pb), peerConns(t, a, pc))
		}
		time.Sleep(10 * time.Millisecond)
	}

	var got int
	err := a.Do(func() (err error) { got, err = AbortPeer(pb, 4379); return })
	if errors.Is(err, ErrDestroyUnsupported) {
		t.Fatalf("%v: the kernel must destroy sockets for this test", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got != 3 {
		t.Errorf("AbortPeer destroyed %d connections, want 3", got)
	}
	for name, cs := range map[string][]*client{"B's to A:4379": in, "A's to B:4379": out} {
		for _, cl := range cs {
			select {
			case err := <-cl.err:
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.ECONNABORTED) {
					t.Errorf("%s (%s): %v, want a reset or an abort", name, cl.conn.LocalAddr(), err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s (%s) still open", name, cl.conn.LocalAddr())
			}
		}
	}
	left := peerConns(t, a, pb)
	if len(left) != 1 || left[0][0].Port() != 445 {
		t.Errorf("A's connections with B after the abort: %v, want the one on port 445", left)
	}
	if l := peerConns(t, a, pc); len(l) != 1 {
		t.Errorf("A's connections with C after the abort: %v, want its one on 4379 untouched", l)
	}
	for _, cl := range append(other, third...) {
		select {
		case err := <-cl.err:
			t.Errorf("%s: %v: a connection AbortPeer must not touch failed", cl.conn.LocalAddr(), err)
		default:
		}
	}
}
