package agents_test

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/tickle"
)

// TestIPaddr3StopLeavesNoConnection: stop must leave no TCP connection on
// the address, even with clients that redial it the moment theirs fails,
// as the kernel's SMB client does. When stop reset the clients before it
// removed the address, such a client reconnected to the old node in the
// gap, its smbd took the connection, and the connection then hung, dead,
// until TCP gave up (20 s in the lab): the client came back to the new
// owner that late, and the byte-range locks it held only in its lease
// cache were not on any server in the meantime (test/kclient's move).
func TestIPaddr3StopLeavesNoConnection(t *testing.T) {
	n := nstest.New(t)
	a := n.AddHost("198.51.100.1/24")
	c := n.AddHost("198.51.100.3/24")
	const vip = "198.51.100.80"
	ip := newIP3(t, map[string]string{"ip": vip, "network_namespace": a.Name, "arp_count": "1"})
	ip.want("start", 0)

	// A service on every address of the node, as smbd listens.
	var ln net.Listener
	if err := a.Do(func() (err error) { ln, err = net.Listen("tcp", ":445"); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			keep(s)
			go func() { s.Read(make([]byte, 1)) }()
		}
	}()

	// Clients that redial as soon as their connection fails, until stop is
	// over.
	done := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 4
	for range clients {
		wg.Add(1)
		go c.Do(func() error {
			defer wg.Done()
			d := net.Dialer{Timeout: 200 * time.Millisecond, KeepAlive: -1}
			for {
				select {
				case <-done:
					return nil
				default:
				}
				cl, err := d.Dial("tcp", vip+":445")
				if err != nil {
					continue
				}
				keep(cl)
				// Until the connection fails (a reset) or stop is over.
				failed := make(chan struct{})
				go func() { cl.Read(make([]byte, 1)); close(failed) }()
				select {
				case <-failed:
				case <-done:
					return nil
				}
			}
		})
	}
	defer func() { close(done); wg.Wait() }()

	addr := netip.MustParseAddr(vip)
	established := func() []tickle.Conn {
		t.Helper()
		rec, err := tickle.OpenRecorder(a.Name, addr, tickle.Ports{}, tickle.SockDiag, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Close()
		cs, err := rec.Record()
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(established()) < clients {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to %s before stop, want %d", len(established()), vip, clients)
		}
		time.Sleep(10 * time.Millisecond)
	}

	ip.want("stop", 0)
	if left := established(); len(left) > 0 {
		t.Errorf("connections to %s left on the node after stop (taken after the local sockets were destroyed, before the address was gone): %v", vip, left)
	}
	// And none comes later: the address is gone.
	var err error
	c.Do(func() error {
		var cl net.Conn
		cl, err = (&net.Dialer{Timeout: 300 * time.Millisecond}).Dial("tcp", vip+":445")
		if err == nil {
			keep(cl)
		}
		return nil
	})
	if err == nil {
		t.Errorf("a client connected to %s after stop", vip)
	}
}
