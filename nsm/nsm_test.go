package nsm

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// rpcCall is a call as a fake server received it.
type rpcCall struct {
	From                   netip.Addr
	Prog, Vers, Proc       uint32
	CredFlavor, VerfFlavor uint32
	Args                   []byte
	xid                    uint32
}

func parseCall(t *testing.T, b []byte) rpcCall {
	d := &decoder{b: b}
	c := rpcCall{xid: d.u32()}
	if mt, rv := d.u32(), d.u32(); mt != 0 || rv != 2 {
		t.Errorf("call: msg_type %d rpcvers %d", mt, rv)
	}
	c.Prog, c.Vers, c.Proc = d.u32(), d.u32(), d.u32()
	c.CredFlavor = d.u32()
	d.opaque(400)
	c.VerfFlavor = d.u32()
	d.opaque(400)
	if d.err != nil {
		t.Fatalf("call: %v", d.err)
	}
	c.Args = d.b
	return c
}

// fakeServer answers RPC calls on a loopback UDP port; drop tells it to
// ignore the first n calls (to see retransmits).
type fakeServer struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	calls []rpcCall
}

func startFake(t *testing.T, drop int, answer func(rpcCall) []byte) *fakeServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 9000)
		for {
			k, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c := parseCall(t, append([]byte(nil), buf[:k]...))
			c.From = from.Addr().Unmap()
			s.mu.Lock()
			s.calls = append(s.calls, c)
			n := len(s.calls)
			s.mu.Unlock()
			if n <= drop {
				continue
			}
			// accepted reply, AUTH_NULL verifier, SUCCESS, results
			r := binary.BigEndian.AppendUint32(nil, c.xid)
			for _, v := range []uint32{1, 0, 0, 0, 0} {
				r = binary.BigEndian.AppendUint32(r, v)
			}
			conn.WriteToUDPAddrPort(append(r, answer(c)...), from)
		}
	}()
	return s
}

func (s *fakeServer) port() uint16 { return uint16(s.conn.LocalAddr().(*net.UDPAddr).Port) }

func (s *fakeServer) received() []rpcCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rpcCall(nil), s.calls...)
}

func TestNotifySendsSMNotifyFromSource(t *testing.T) {
	statd := startFake(t, 1, func(rpcCall) []byte { return nil })
	pm := startFake(t, 0, func(rpcCall) []byte { return binary.BigEndian.AppendUint32(nil, uint32(statd.port())) })
	src := netip.MustParseAddr("127.0.0.3") // stands for the VIP: any 127/8 address is local
	n := &Notifier{Source: src, MonName: "198.51.100.203", State: 7, PortmapPort: pm.port(), Retransmit: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := n.NotifyAll(ctx, []string{"127.0.0.1"})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("NotifyAll: %+v", res)
	}
	pmCalls := pm.received()
	if len(pmCalls) != 1 {
		t.Fatalf("portmapper got %d calls, want 1", len(pmCalls))
	}
	// GETPORT(prog 100024, vers 1, prot UDP 17, port 0)
	wantArgs := []byte{0, 1, 0x86, 0xb8, 0, 0, 0, 1, 0, 0, 0, 17, 0, 0, 0, 0}
	if c := pmCalls[0]; c.Prog != 100000 || c.Vers != 2 || c.Proc != 3 || c.From != src || string(c.Args) != string(wantArgs) || c.CredFlavor != 0 {
		t.Errorf("portmapper call = %+v", c)
	}
	calls := statd.received()
	if len(calls) != 2 {
		t.Fatalf("statd got %d calls, want 2 (the first dropped, then a retransmit)", len(calls))
	}
	if calls[0].xid != calls[1].xid {
		t.Errorf("retransmit has a new xid")
	}
	// mon_name "198.51.100.203" (14 bytes, padded to 16), state 7
	want := append(append([]byte{0, 0, 0, 14}, "198.51.100.203\x00\x00"...), 0, 0, 0, 7)
	for _, c := range calls {
		if c.Prog != 100024 || c.Vers != 1 || c.Proc != 6 || c.From != src || c.CredFlavor != 0 || c.VerfFlavor != 0 {
			t.Errorf("SM_NOTIFY call = %+v", c)
		}
		if string(c.Args) != string(want) {
			t.Errorf("SM_NOTIFY args = %q, want %q", c.Args, want)
		}
	}
}

func TestNotifyUnansweredEndsAtDeadline(t *testing.T) {
	pm := startFake(t, 1<<30, nil) // never answers
	n := &Notifier{Source: netip.MustParseAddr("127.0.0.1"), State: 1, PortmapPort: pm.port(), Retransmit: 20 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := n.Notify(ctx, netip.MustParseAddr("127.0.0.1"))
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("Notify = %v, want a deadline error", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Notify took %v past a 300ms deadline", d)
	}
	if k := len(pm.received()); k < 2 {
		t.Errorf("portmapper got %d calls: no retransmits", k)
	}
}

func TestNotifyUnregisteredStatd(t *testing.T) {
	pm := startFake(t, 0, func(rpcCall) []byte { return []byte{0, 0, 0, 0} })
	n := &Notifier{Source: netip.MustParseAddr("127.0.0.1"), State: 1, PortmapPort: pm.port()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Notify(ctx, netip.MustParseAddr("127.0.0.1")); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("Notify = %v", err)
	}
}

func TestReadMonitors(t *testing.T) {
	dir := t.TempDir()
	sm := filepath.Join(dir, "sm")
	os.Mkdir(sm, 0o700)
	// as rpc.statd writes them (nfs-utils support/nsm/file.c): callback
	// address, program, version, procedure, cookie, mon_name, my_name
	rec := "0100007f 000186b5 00000004 00000010 0a0b0c0d000000000000000000000000 198.51.100.151 n3\n"
	os.WriteFile(filepath.Join(sm, "198.51.100.151"), []byte(rec+"garbage\n"), 0o600)
	os.WriteFile(filepath.Join(sm, "k2.example"), []byte(strings.Replace(rec, "198.51.100.151", "k2.example", 1)), 0o600)
	os.WriteFile(filepath.Join(sm, ".hidden"), []byte(rec), 0o600)
	ms, err := ReadMonitors(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("ReadMonitors = %+v", ms)
	}
	want := Monitor{Host: "198.51.100.151", MonName: "198.51.100.151", MyName: "n3", Priv: [16]byte{10, 11, 12, 13}}
	if ms[0] != want {
		t.Errorf("record = %+v, want %+v", ms[0], want)
	}
	if got := Clients(append(ms, ms[0])); !reflect.DeepEqual(got, []string{"198.51.100.151", "k2.example"}) {
		t.Errorf("Clients = %v", got)
	}
	if ms, err := ReadMonitors(filepath.Join(dir, "none")); err != nil || len(ms) != 0 {
		t.Errorf("missing dir: %v %v", ms, err)
	}
}

func TestNextStateIsOddAndGrows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state")
	var got []int32
	for range 3 {
		s, err := NextState(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if !reflect.DeepEqual(got, []int32{1, 3, 5}) {
		t.Errorf("states = %v, want 1 3 5", got)
	}
	os.WriteFile(p, []byte("8\n"), 0o644)
	if s, _ := NextState(p); s != 9 {
		t.Errorf("after 8: %d, want 9", s)
	}
	os.WriteFile(p, []byte("x"), 0o644)
	if _, err := NextState(p); err == nil {
		t.Errorf("garbage state accepted")
	}
}

func TestDecodeReplyErrors(t *testing.T) {
	u := func(v ...uint32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, x)
		}
		return b
	}
	if _, err := decodeReply(u(9, 1, 0, 0, 0, 1)); err == nil || err.Error() != "rpc: program unavailable" {
		t.Errorf("PROG_UNAVAIL: %v", err)
	}
	if _, err := decodeReply(u(9, 1, 1, 1)); err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("MSG_DENIED: %v", err)
	}
	if _, err := decodeReply(u(9, 0)); err == nil {
		t.Errorf("a call decoded as a reply")
	}
	if _, err := decodeReply(u(9, 1, 0, 0, 5000)); err == nil {
		t.Errorf("oversized verifier accepted")
	}
	r, err := decodeReply(u(9, 1, 0, 0, 0, 0, 42))
	if err != nil || r.XID != 9 {
		t.Fatalf("success: %+v %v", r, err)
	}
	if p, err := decodePort(r.Results); err != nil || p != 42 {
		t.Errorf("port %d %v", p, err)
	}
	if _, err := decodePort(u(70000)); err == nil {
		t.Errorf("port 70000 accepted")
	}
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42})
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeReply(b)
		if err == nil {
			if len(r.Results) > len(b) {
				t.Fatalf("results longer than the message")
			}
			decodePort(r.Results)
		}
	})
}
