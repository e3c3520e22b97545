package ctdb

import (
	"context"
	"encoding/binary"
	"net"
	"path/filepath"
	"testing"
	"time"
)

func leaderMsg(pnn uint32) []byte {
	body := make([]byte, 16)
	binary.LittleEndian.PutUint64(body[0:], srvidLeader)
	binary.LittleEndian.PutUint32(body[8:], 4)
	binary.LittleEndian.PutUint32(body[12:], pnn)
	return rawPacket(opReqMessage, 0, 0, body)
}

// rawPacket lays out a packet by hand (struct ctdb_req_header: length,
// magic, version, generation, operation, destnode, srcnode, reqid), apart
// from the package's encoder, its length rounded up to 8.
func rawPacket(op, dest, reqid uint32, body []byte) []byte {
	n := (32 + len(body) + 7) &^ 7
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b[0:], uint32(n))
	copy(b[4:], "BDTC") // 0x43544442 little-endian
	binary.LittleEndian.PutUint32(b[8:], 1)
	binary.LittleEndian.PutUint32(b[16:], op)
	binary.LittleEndian.PutUint32(b[20:], dest)
	binary.LittleEndian.PutUint32(b[28:], reqid)
	copy(b[32:], body)
	return b
}

// A fake ctdbd: it answers the registration and sends the broadcasts the
// test gives it; the watch reports each, UnknownPNN after a silence, and
// returns when the daemon goes.
func TestWatchLeader(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctdbd.socket")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	send := make(chan []byte)
	registered := make(chan uint64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := readPacket(c)
		if err != nil {
			return
		}
		if req.Operation == opReqControl && binary.LittleEndian.Uint32(req.Body) == controlRegisterSrv {
			registered <- binary.LittleEndian.Uint64(req.Body[8:])
		}
		reply := make([]byte, 12)
		c.Write(rawPacket(opReplyControl, 0, req.ReqID, reply))
		for b := range send {
			if b == nil {
				return // ctdbd goes away
			}
			c.Write(b)
		}
	}()
	got := make(chan int, 10)
	done := make(chan error, 1)
	last := -2
	go func() {
		done <- WatchLeader(context.Background(), sock, 300*time.Millisecond, func(l int) {
			if l != last { // the caller keeps what changed
				last = l
				got <- l
			}
		})
	}()
	if srv := <-registered; srv != srvidLeader {
		t.Fatalf("registered srvid %x", srv)
	}
	send <- leaderMsg(1)
	send <- leaderMsg(1) // same leader: no second report
	send <- leaderMsg(2)
	want := []int{1, 2, UnknownPNN} // then silence
	for _, w := range want {
		select {
		case l := <-got:
			if l != w {
				t.Fatalf("leader %d, want %d", l, w)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no report of leader %d", w)
		}
	}
	send <- leaderMsg(unknownPNN32)
	send <- leaderMsg(0)
	if l := <-got; l != 0 {
		t.Fatalf("leader %d after election, want 0", l)
	}
	send <- nil
	select {
	case err := <-done:
		if err == nil {
			t.Error("watch ended without error when ctdbd went")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("watch did not end when ctdbd went")
	}
}

func TestWatchLeaderNotRunning(t *testing.T) {
	err := WatchLeader(context.Background(), filepath.Join(t.TempDir(), "none"), time.Second, func(int) {})
	if err == nil || !isNotRunning(err) {
		t.Errorf("err %v, want ErrNotRunning", err)
	}
}

func isNotRunning(err error) bool { return err != nil && errorsIs(err, ErrNotRunning) }
