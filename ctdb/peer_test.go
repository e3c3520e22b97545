package ctdb

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// nodemapEntryPort is nodemapEntry with ctdbd's port in the address.
func nodemapEntryPort(pnn, flags uint32, ip [4]byte, port uint16) []byte {
	e := nodemapEntry(pnn, flags, ip)
	binary.BigEndian.PutUint16(e[10:], port)
	return e
}

// flagsDaemon is a fake ctdbd of pnn 0 in a three-node cluster
// (198.51.100.11-13, port 4379) that answers any number of clients; the
// flags of pnn 2 are what flags2 holds at each question.
func flagsDaemon(t *testing.T, flags2 *atomic.Uint32) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ctdbd.socket")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					req, err := readPacket(c)
					if err != nil {
						return
					}
					switch binary.LittleEndian.Uint32(req.Body) {
					case controlGetPNN:
						c.Write(replyPacket(req.ReqID, 0, nil, nil))
					case controlGetNodemap:
						m := nodemap(nodemapEntryPort(0, 0, [4]byte{198, 51, 100, 11}, 4379),
							nodemapEntryPort(1, 0, [4]byte{198, 51, 100, 12}, 4379),
							nodemapEntryPort(2, flags2.Load(), [4]byte{198, 51, 100, 13}, 4379))
						c.Write(replyPacket(req.ReqID, 0, m, nil))
					default:
						c.Write(replyPacket(req.ReqID, -1, nil, []byte("unexpected control\x00")))
					}
				}
			}()
		}
	}()
	return sock
}

func TestDropPeer(t *testing.T) {
	var flags2 atomic.Uint32
	sock := flagsDaemon(t, &flags2)
	var calls []netip.AddrPort
	abort := func(a netip.Addr, port uint16) (int, error) {
		calls = append(calls, netip.AddrPortFrom(a, port))
		// ctdbd's transport sees its connections fail: node_dead.
		flags2.Store(flagDisconnected | flagUnhealthy)
		return 2, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := DropPeer(ctx, sock, 2, abort)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort("198.51.100.13:4379")
	if len(calls) != 1 || calls[0] != want {
		t.Errorf("abort called with %v, want once with %v", calls, want)
	}
	if d.Peer != want || d.Aborted != 2 || d.Already || d.Took <= 0 {
		t.Errorf("DropPeer = %+v", d)
	}

	// Disconnected already: nothing to end.
	calls = nil
	d, err = DropPeer(ctx, sock, 2, abort)
	if err != nil || !d.Already || len(calls) != 0 {
		t.Errorf("on a disconnected peer: %+v, %v, abort calls %v", d, err, calls)
	}
	// Never this node itself, nor a pnn ctdbd does not know.
	for _, pnn := range []int{0, 7} {
		if _, err := DropPeer(ctx, sock, pnn, abort); err == nil || len(calls) != 0 {
			t.Errorf("DropPeer(pnn %d) = %v, abort calls %v: want an error and no abort", pnn, err, calls)
		}
	}
}

// A ctdbd that does not mark the peer disconnected: DropPeer says so when
// its context ends.
func TestDropPeerBounded(t *testing.T) {
	var flags2 atomic.Uint32
	sock := flagsDaemon(t, &flags2)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := DropPeer(ctx, sock, 2, func(netip.Addr, uint16) (int, error) { return 0, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DropPeer = %v, want the context's deadline", err)
	}
	if time.Since(t0) > 2*time.Second {
		t.Errorf("DropPeer took %v, beyond its context", time.Since(t0))
	}
}
