package ctdb

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodemapEntry marshals one ctdb_node_and_flags as a 64-bit Linux ctdbd
// does: pnn, flags, then a 28-byte sockaddr_in6-sized address.
func nodemapEntry(pnn, flags uint32, ip [4]byte) []byte {
	e := make([]byte, 8+28)
	binary.LittleEndian.PutUint32(e, pnn)
	binary.LittleEndian.PutUint32(e[4:], flags)
	binary.NativeEndian.PutUint16(e[8:], 2)
	copy(e[12:], ip[:])
	return e
}

func nodemap(entries ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(entries)))
	for _, e := range entries {
		b = append(b, e...)
	}
	return b
}

func replyPacket(reqid uint32, status int32, data, errmsg []byte) []byte {
	body := make([]byte, 12, 12+len(data)+len(errmsg))
	binary.LittleEndian.PutUint32(body, uint32(status))
	binary.LittleEndian.PutUint32(body[4:], uint32(len(data)))
	binary.LittleEndian.PutUint32(body[8:], uint32(len(errmsg)))
	body = append(append(body, data...), errmsg...)
	return rawPacket(opReplyControl, 0, reqid, body)
}

// fakeDaemon answers GET_PNN with pnn and GET_NODEMAP with the reply
// nodemapReply builds, after an unrelated broadcast (which the client
// must skip).
func fakeDaemon(t *testing.T, pnn int32, nodemapReply func(reqid uint32) []byte) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ctdbd.socket")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(leaderMsg(1))
		for {
			req, err := readPacket(c)
			if err != nil {
				return
			}
			reqid := req.ReqID
			if req.DestNode != nodeCurrent {
				c.Write(replyPacket(reqid, -1, nil, []byte("wrong destination\x00")))
				continue
			}
			switch binary.LittleEndian.Uint32(req.Body) {
			case controlGetPNN:
				c.Write(replyPacket(reqid, pnn, nil, nil))
			case controlGetNodemap:
				if r := nodemapReply(reqid); r != nil {
					c.Write(r)
				}
			default:
				c.Write(replyPacket(reqid, -1, nil, []byte("unexpected control\x00")))
			}
		}
	}()
	return sock
}

func TestLocalNode(t *testing.T) {
	m := nodemap(
		nodemapEntry(0, 0, [4]byte{198, 51, 100, 11}),
		nodemapEntry(1, flagUnhealthy|flagBanned, [4]byte{198, 51, 100, 12}),
		nodemapEntry(2, flagDisconnected, [4]byte{198, 51, 100, 13}),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		pnn   int32
		state string
		addr  string
	}{
		{0, "OK", "198.51.100.11"},
		{1, "BANNED|UNHEALTHY|INACTIVE", "198.51.100.12"},
		{2, "DISCONNECTED|INACTIVE", "198.51.100.13"},
	} {
		sock := fakeDaemon(t, tc.pnn, func(reqid uint32) []byte { return replyPacket(reqid, 0, m, nil) })
		n, err := LocalNode(ctx, sock)
		if err != nil {
			t.Fatalf("pnn %d: %v", tc.pnn, err)
		}
		if n.PNN != int(tc.pnn) || n.State() != tc.state || n.Addr != tc.addr || !n.This {
			t.Errorf("pnn %d: got %+v (%s), want state %s at %s", tc.pnn, n, n.State(), tc.state, tc.addr)
		}
		if n.Healthy() != (tc.state == "OK") {
			t.Errorf("pnn %d: Healthy() = %v", tc.pnn, n.Healthy())
		}
	}
	// The admin's DISABLED is healthy, as with the tool.
	sock := fakeDaemon(t, 0, func(reqid uint32) []byte {
		return replyPacket(reqid, 0, nodemap(nodemapEntry(0, flagPermanentlyDisable, [4]byte{198, 51, 100, 11})), nil)
	})
	if n, err := LocalNode(ctx, sock); err != nil || n.State() != "DISABLED" || !n.Healthy() {
		t.Errorf("disabled node: %+v, %v", n, err)
	}
}

func TestLocalNodeErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := LocalNode(ctx, filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no socket: %v, want ErrNotRunning", err)
	}
	// A stale socket file (ctdbd killed): connection refused.
	stale := filepath.Join(t.TempDir(), "stale.socket")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := LocalNode(ctx, stale); !errors.Is(err, ErrNotRunning) {
		t.Errorf("stale socket: %v, want ErrNotRunning", err)
	}
	for name, tc := range map[string]struct {
		reply func(uint32) []byte
		want  string
	}{
		"refused":   {func(r uint32) []byte { return replyPacket(r, -1, nil, []byte("no nodemap\x00")) }, "refused its nodemap (status -1: no nodemap)"},
		"missing":   {func(r uint32) []byte { return replyPacket(r, 0, nodemap(nodemapEntry(3, 0, [4]byte{})), nil) }, "pnn 0) is not in ctdbd's nodemap"},
		"short":     {func(r uint32) []byte { return replyPacket(r, 0, []byte{1, 0}, nil) }, "short nodemap"},
		"truncated": {func(r uint32) []byte { return replyPacket(r, 0, nodemap([]byte{0, 0, 0, 0}), nil) }, "nodemap of 1 nodes in 4 bytes"},
	} {
		sock := fakeDaemon(t, 0, tc.reply)
		if _, err := LocalNode(ctx, sock); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// A daemon that never answers: the context's deadline ends the wait.
	sock := fakeDaemon(t, 0, func(uint32) []byte { return nil })
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	if _, err := LocalNode(short, sock); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("silent daemon: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("silent daemon: waited %v past a 200ms deadline", d)
	}
}
