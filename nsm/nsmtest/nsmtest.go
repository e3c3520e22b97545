// Package nsmtest is a fake NFSv3 client for tests of SM_NOTIFY senders:
// a portmapper that answers GETPORT for statd and a statd that records the
// SM_NOTIFY calls it receives, both over UDP on a loopback address.
package nsmtest

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// Notification is an SM_NOTIFY call the fake statd received.
type Notification struct {
	From    netip.Addr // the sender's address
	MonName string
	State   int32
}

// Client is the fake client.
type Client struct {
	pm, statd *net.UDPConn
	mu        sync.Mutex
	got       []Notification
}

// Start starts a fake client on 127.0.0.1; it stops when the test ends.
func Start(t testing.TB) *Client {
	t.Helper()
	return StartAt(t, netip.MustParseAddr("127.0.0.1"), 0)
}

// StartAt starts a fake client on addr (in the caller's network
// namespace), its portmapper on UDP port pmPort (0: any); it stops when
// the test ends.
func StartAt(t testing.TB, addr netip.Addr, pmPort uint16) *Client {
	t.Helper()
	c := &Client{}
	var err error
	for i, p := range []**net.UDPConn{&c.pm, &c.statd} {
		port := uint16(0)
		if i == 0 {
			port = pmPort
		}
		if *p, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, port))); err != nil {
			t.Fatal(err)
		}
		conn := *p
		t.Cleanup(func() { conn.Close() })
	}
	go c.serve(c.pm, func(prog, vers, proc uint32, _ []byte, _ netip.Addr) ([]byte, bool) {
		if prog != 100000 || vers != 2 || proc != 3 {
			return nil, false
		}
		return binary.BigEndian.AppendUint32(nil, uint32(c.statd.LocalAddr().(*net.UDPAddr).Port)), true
	})
	go c.serve(c.statd, func(prog, vers, proc uint32, args []byte, from netip.Addr) ([]byte, bool) {
		if prog != 100024 || vers != 1 || proc != 6 || len(args) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(args)
		pad := (int(n) + 3) &^ 3
		if n > 1024 || len(args) < 4+pad+4 {
			return nil, false
		}
		c.mu.Lock()
		c.got = append(c.got, Notification{From: from, MonName: string(args[4 : 4+n]), State: int32(binary.BigEndian.Uint32(args[4+pad:]))})
		c.mu.Unlock()
		return nil, true
	})
	return c
}

// PortmapPort is the fake portmapper's UDP port.
func (c *Client) PortmapPort() uint16 { return uint16(c.pm.LocalAddr().(*net.UDPAddr).Port) }

// Notifications are the SM_NOTIFY calls received so far.
func (c *Client) Notifications() []Notification {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Notification(nil), c.got...)
}

// serve answers AUTH_NULL calls with handle's results; calls handle
// refuses get no answer.
func (c *Client) serve(conn *net.UDPConn, handle func(prog, vers, proc uint32, args []byte, from netip.Addr) ([]byte, bool)) {
	buf := make([]byte, 9000)
	for {
		k, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:k]
		if len(b) < 40 || binary.BigEndian.Uint32(b[4:]) != 0 {
			continue
		}
		u := func(i int) uint32 { return binary.BigEndian.Uint32(b[4*i:]) }
		if u(7) != 0 || u(9) != 0 { // AUTH_NULL credential and verifier, empty
			continue
		}
		res, ok := handle(u(3), u(4), u(5), b[40:], from.Addr().Unmap())
		if !ok {
			continue
		}
		r := binary.BigEndian.AppendUint32(nil, u(0))
		for _, v := range []uint32{1, 0, 0, 0, 0} {
			r = binary.BigEndian.AppendUint32(r, v)
		}
		conn.WriteToUDPAddrPort(append(r, res...), from)
	}
}
