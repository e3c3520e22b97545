package tickle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/nstest"
)

// serverConn is one connection a test server accepted; err gets its first
// read error.
type serverConn struct {
	conn net.Conn
	err  chan error
}

// serveTracked listens on addr in h and reports each accepted connection.
func serveTracked(t *testing.T, h *nstest.Host, network, addr string) <-chan *serverConn {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) { ln, err = net.Listen(network, addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan *serverConn, 1024)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			sc := &serverConn{conn: c, err: make(chan error, 1)}
			go func() {
				_, err := io.Copy(io.Discard, c)
				if err == nil {
					err = io.EOF
				}
				sc.err <- err
			}()
			accepted <- sc
		}
	}()
	return accepted
}

func takeAccepted(t *testing.T, ch <-chan *serverConn, n int) []*serverConn {
	t.Helper()
	var out []*serverConn
	timeout := time.After(2 * time.Second)
	for len(out) < n {
		select {
		case sc := <-ch:
			out = append(out, sc)
		case <-timeout:
			t.Fatalf("accepted %d of %d connections", len(out), n)
		}
	}
	return out
}

type logRecInfo struct {
	mu    sync.Mutex
	infos []string
	warns []string
}

func (l *logRecInfo) Infof(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.infos = append(l.infos, fmt.Sprintf(f, a...))
}
func (l *logRecInfo) Warnf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.warns = append(l.warns, fmt.Sprintf(f, a...))
}
func (l *logRecInfo) Debugf(string, ...any) {}

// Release on a kernel that cannot destroy sockets (forced here): every local
// socket on the VIP is reset with an exact RST, its service sees
// ECONNRESET, and the client is reset too (as SOCK_DESTROY would do), with
// the address still up.
func TestReleaseExactRST(t *testing.T) {
	const k = 20
	l := newLab(t)
	for _, tc := range []struct {
		name, listen, dial string
		vip                netip.Addr
	}{
		{"IPv4", "198.51.100.10:445", "198.51.100.10:445", vip4},
		{"IPv6", "[2001:db8::10]:445", "[2001:db8::10]:445", vip6},
		// A dual-stack listener: the sockets are AF_INET6 with
		// ::ffff:198.51.100.10, the packets IPv4.
		{"IPv4 on a dual-stack socket", ":2049", "198.51.100.10:2049", vip4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := serveTracked(t, l.a, "tcp", tc.listen)
			cs := dial(t, l.c, tc.dial, k)
			servers := takeAccepted(t, accepted, k)
			if got := record(t, l.a, tc.vip, SockDiag, nil); len(got) != k {
				t.Fatalf("%d sockets on %s before release, want %d", len(got), tc.vip, k)
			}
			var log logRecInfo
			cfg := Config{VIP: tc.vip, Netns: l.a.Name, StateDir: t.TempDir(), Source: SockDiag, Log: &log, exactRST: true}
			start := time.Now()
			_, n, err := Release(context.Background(), cfg)
			took := time.Since(start)
			if err != nil || n != k {
				t.Fatalf("release: %d reset, %v", n, err)
			}
			// All on the first pass: a retry (600 ms later) would mean the
			// RSTs to the local sockets were not exact (the clients' kernels
			// then finish the job: reset by our RST to them, they answer the
			// local socket's challenge ACK with an RST of their own).
			if took >= rstRetryAfter {
				t.Errorf("release took %v: the first pass did not reset every socket", took)
			}
			if len(log.infos) != 1 || !strings.Contains(log.infos[0], "reset with exact RSTs instead") {
				t.Errorf("log: %q", log.infos)
			}
			if left := record(t, l.a, tc.vip, SockDiag, nil); len(left) != 0 {
				t.Errorf("sockets left on %s: %v", tc.vip, left)
			}
			// The service's sockets: ECONNRESET, at once.
			deadline := time.After(time.Second)
			for i, sc := range servers {
				select {
				case err := <-sc.err:
					if !errors.Is(err, syscall.ECONNRESET) {
						t.Errorf("server conn %d (%s): %v, want ECONNRESET", i, sc.conn.RemoteAddr(), err)
					}
				case <-deadline:
					t.Fatalf("server conn %d (%s) still open 1 s after release", i, sc.conn.RemoteAddr())
				}
			}
			// The clients, which sent nothing: reset by the RST to them.
			last := waitReset(t, cs, time.Second)
			t.Logf("%d local sockets reset with exact RSTs: release took %v; the last client reset %v after release began",
				k, took, last.Sub(start))
		})
	}
}

// The kernel's answers are what the fallback reads: with the local socket
// tickled FROM the client (delivered locally through loopback routing), the
// answer goes out of eth0 toward the client, and the packet socket sees it.
func TestRawLinkSeesLocalAnswer(t *testing.T) {
	l := newLab(t)
	for _, tc := range []struct{ listen string }{{"198.51.100.10:446"}, {"[2001:db8::10]:446"}} {
		accepted := serveTracked(t, l.a, "tcp", tc.listen)
		cs := dial(t, l.c, tc.listen, 1)
		takeAccepted(t, accepted, 1)
		c := NewConn(netip.MustParseAddrPort(tc.listen), cs[0].conn.LocalAddr().(*net.TCPAddr).AddrPort())
		link, err := openRawLink(l.a.Name, c.Local.Addr())
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan captured, 1)
		go func() {
			if seg, err := link.Recv(); err == nil {
				got <- seg
			}
		}()
		if err := link.Send(localTickle(c)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		select {
		case seg := <-got:
			t.Logf("%v: answer captured %v after the tickle", c, time.Since(start))
			if NewConn(seg.Src, seg.Dst) != c || seg.Flags != FlagACK || seg.Len != 0 {
				t.Errorf("%v: captured %+v", c, seg)
			}
		case <-time.After(time.Second):
			t.Errorf("%v: no answer captured", c)
		}
		link.Close()
	}
}

// The clients' side when the RST to them is lost (dropped at C here): the
// local sockets are reset all the same (by the exact RSTs to them alone),
// the idle clients hear nothing, and their next send is answered by A's
// kernel (the address is still up, the socket gone) with an RST: each gets
// ECONNRESET, none hangs.
func TestReleaseExactRSTClientRSTLost(t *testing.T) {
	const k = 20
	l := newLab(t)
	l.c.Run(t, "nft", "add table inet rstdrop; add chain inet rstdrop in { type filter hook input priority 0; }; "+
		"add rule inet rstdrop in tcp flags rst drop")
	var all []*client
	for _, tc := range []struct {
		addr string
		vip  netip.Addr
	}{{"198.51.100.10:445", vip4}, {"[2001:db8::10]:445", vip6}} {
		accepted := serveTracked(t, l.a, "tcp", tc.addr)
		cs := dial(t, l.c, tc.addr, k)
		all = append(all, cs...)
		servers := takeAccepted(t, accepted, k)
		start := time.Now()
		_, n, err := Release(context.Background(), Config{VIP: tc.vip, Netns: l.a.Name, StateDir: t.TempDir(), Source: SockDiag, exactRST: true})
		if err != nil || n != k {
			t.Fatalf("%s: release: %d reset, %v", tc.vip, n, err)
		}
		if took := time.Since(start); took >= rstRetryAfter {
			t.Errorf("%s: release took %v: the first pass did not reset every socket", tc.vip, took)
		}
		if left := record(t, l.a, tc.vip, SockDiag, nil); len(left) != 0 {
			t.Errorf("%s: sockets left: %v", tc.vip, left)
		}
		for i, sc := range servers {
			select {
			case err := <-sc.err:
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("%s: server conn %d: %v, want ECONNRESET", tc.vip, i, err)
				}
			case <-time.After(time.Second):
				t.Fatalf("%s: server conn %d still open 1 s after release", tc.vip, i)
			}
		}
		time.Sleep(100 * time.Millisecond)
		for i, c := range cs {
			select {
			case err := <-c.err:
				t.Fatalf("%s: client %d ended with its RST dropped and nothing sent: %v", tc.vip, i, err)
			default:
			}
		}
	}
	l.c.Run(t, "nft", "delete table inet rstdrop")
	// Now the clients send: A's kernel resets each.
	start := time.Now()
	for i, c := range all {
		if _, err := c.conn.Write([]byte("x")); err != nil {
			t.Errorf("client %d: write: %v", i, err)
		}
	}
	last := waitReset(t, all, time.Second)
	t.Logf("%d clients whose RST was dropped: reset by A's kernel %v after they sent", len(all), last.Sub(start))
}
