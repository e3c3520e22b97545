package tickle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hexLines reads a testdata file of hex lines ("#" lines are comments).
func hexLines(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		b, err := hex.DecodeString(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Real dumps: each holds the two ends of one loopback connection.
func TestSockDiagRealDump(t *testing.T) {
	dumps := hexLines(t, "sockdiag-dump.hex")
	if len(dumps) != 2 {
		t.Fatalf("%d dumps", len(dumps))
	}
	for i, want := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")} {
		d := &sockDiag{seq: binary.NativeEndian.Uint32(dumps[i][8:])}
		var got []diagSocket
		var m inetDiagMsg
		done, err := d.answers(dumps[i], func(p []byte) {
			var s diagSocket
			if !parseDiagMsg(p, &m, &s) {
				t.Errorf("dump %d: a socket not read: %x", i, p)
			}
			got = append(got, s)
		})
		if done || err != nil || len(got) != 2 {
			t.Fatalf("dump %d: %d sockets, done %v, %v", i, len(got), done, err)
		}
		a, b := got[0], got[1]
		if a.local.Addr() != want || a.peer.Addr() != want || a.local != b.peer || a.peer != b.local || a.local.Port() == 0 {
			t.Errorf("dump %d: sockets %+v and %+v are not the two ends of one connection on %s", i, a, b, want)
		}
	}
}

// FuzzSockDiagAnswers: the netlink stream of a dump. Every payload handed
// on is the part of the input its header declares, in order, and no
// message is read past the bytes received; a stream read without error
// re-encodes to one that reads the same. Each payload that reads as a
// socket re-encodes to its first 72 bytes.
func FuzzSockDiagAnswers(f *testing.F) {
	for _, d := range hexLines(f, "sockdiag-dump.hex") {
		binary.NativeEndian.PutUint32(d[8:], 1) // the fuzz target's sequence
		f.Add(d)
	}
	f.Add([]byte{16, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{20, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := &sockDiag{seq: 1}
		type msg struct {
			off     int
			payload []byte
		}
		var got []msg
		var m inetDiagMsg
		var s diagSocket
		_, err := d.answers(raw, func(p []byte) {
			off := offsetIn(t, raw, p)
			h := raw[off-nlHdrLen:]
			if n := int(binary.NativeEndian.Uint32(h)); n != nlHdrLen+len(p) || binary.NativeEndian.Uint32(h[8:]) != 1 {
				t.Fatalf("payload of %d bytes at %d: its header says length %d", len(p), off, n)
			}
			if len(got) > 0 && off <= got[len(got)-1].off {
				t.Fatalf("payload at %d after one at %d", off, got[len(got)-1].off)
			}
			got = append(got, msg{off, p})
			if parseDiagMsg(p, &m, &s) {
				e, _ := m.MarshalBinary()
				if !bytes.Equal(e, p[:msgLen]) {
					t.Fatalf("socket %x re-encoded as %x", p[:msgLen], e)
				}
				if s.family != p[0] || s.local.Port() != binary.BigEndian.Uint16(p[4:]) || s.peer.Port() != binary.BigEndian.Uint16(p[6:]) {
					t.Fatalf("socket %x read as %+v", p[:msgLen], s)
				}
			}
		})
		if err != nil {
			return
		}
		var again []byte
		for _, g := range got {
			again = nlHeader{Len: uint32(nlHdrLen + len(g.payload)), Type: 20, Seq: 1}.appendBinary(again)
			again = append(again, g.payload...)
			again = append(again, make([]byte, nlAlign(len(again))-len(again))...)
		}
		i := 0
		if _, err := d.answers(again, func(p []byte) {
			if i >= len(got) || !bytes.Equal(p, got[i].payload) {
				t.Fatalf("re-encoded stream: payload %d is %x", i, p)
			}
			i++
		}); err != nil || i != len(got) {
			t.Fatalf("re-encoded stream: %d of %d payloads, %v", i, len(got), err)
		}
	})
}

// offsetIn returns where p lies in b, failing when it lies elsewhere.
func offsetIn(t *testing.T, b, p []byte) int {
	t.Helper()
	off := cap(b) - cap(p)
	if off < nlHdrLen || off+len(p) > len(b) || len(p) > 0 && &b[off] != &p[0] {
		t.Fatalf("a payload of %d bytes outside the %d bytes received", len(p), len(b))
	}
	return off
}

// FuzzInetDiag: requests and filters made of the fuzzer's values encode
// and decode back to themselves; arbitrary bytes either fail to decode or
// decode to a value that encodes back to them.
func FuzzInetDiag(f *testing.F) {
	for _, d := range hexLines(f, "sockdiag-dump.hex") {
		f.Add(uint8(unix.AF_INET), uint32(2), d[16:16+reqLen], d[16:]) // a socket's message as both
	}
	f.Add(uint8(unix.AF_INET6), uint32(0xffffffff), []byte{}, localAddrBytecode(netip.MustParseAddr("2001:db8::10")))
	f.Fuzz(func(t *testing.T, family uint8, n uint32, attrs, raw []byte) {
		// A made request.
		req := inetDiagReq{Family: family, Protocol: uint8(n), Ext: uint8(n >> 8), States: n, Attrs: attrs}
		req.ID = inetDiagSockID{SPort: uint16(n), DPort: uint16(n >> 16), If: ^n}
		copy(req.ID.Src[:], raw)
		copy(req.ID.Dst[:], attrs)
		copy(req.ID.Cookie[:], raw[min(len(raw), 16):])
		e, _ := req.MarshalBinary()
		var req2 inetDiagReq
		if err := req2.UnmarshalBinary(e); err != nil || !sameReq(req, req2) || len(e) != reqLen+len(attrs) {
			t.Fatalf("request %+v came back as %+v (%v)", req, req2, err)
		}
		// The source address of a made socket identity.
		if addrOf(raw, family).IsValid() && addrOf(attrs, family).IsValid() {
			src := netip.AddrPortFrom(addrOf(raw, family), uint16(n))
			dst := netip.AddrPortFrom(addrOf(attrs, family), uint16(n>>16))
			var id inetDiagSockID
			id.setAddrs(family, src, dst)
			s2, d2, ok := id.addrs(family)
			if !ok || s2 != src || d2 != dst {
				t.Fatalf("%v -> %v came back as %v -> %v", src, dst, s2, d2)
			}
		}
		// A filter for a made address.
		if a := addrOf(raw, family); a.IsValid() {
			bc := localAddrBytecode(a)
			if int(binary.NativeEndian.Uint16(bc)) != len(bc) || binary.NativeEndian.Uint16(bc[2:]) != reqBytecode || len(bc)%4 != 0 {
				t.Fatalf("bytecode attribute %x", bc)
			}
			var c hostCond
			if err := c.UnmarshalBinary(bc[rtaLen:]); err != nil || c.Addr != a || int(c.PrefixLen) != a.BitLen() || c.Port != anyPort ||
				c.Op.Code != bcSCond || int(c.Op.Yes) != len(bc)-rtaLen || int(c.Op.No) != len(bc)-rtaLen+4 {
				t.Fatalf("filter for %s decoded as %+v (%v)", a, c, err)
			}
		}
		// Arbitrary bytes.
		var m inetDiagMsg
		if err := m.UnmarshalBinary(raw); (err != nil) != (len(raw) < msgLen) {
			t.Fatalf("%d bytes: %v", len(raw), err)
		} else if err == nil {
			if e, _ := m.MarshalBinary(); !bytes.Equal(e, raw[:msgLen]) {
				t.Fatalf("message %x re-encoded as %x", raw[:msgLen], e)
			}
		}
		var r inetDiagReq
		if err := r.UnmarshalBinary(raw); err == nil {
			e, _ := r.MarshalBinary()
			want := bytes.Clone(raw)
			want[3] = 0 // the pad
			if !bytes.Equal(e, want) {
				t.Fatalf("request %x re-encoded as %x", raw, e)
			}
		}
		var c hostCond
		if err := c.UnmarshalBinary(raw); err == nil {
			var c2 hostCond
			e := c.appendBinary(nil)
			if err := c2.UnmarshalBinary(e); err != nil || c2 != c || len(e) != bcOpLen+hostcondLen+len(c.Addr.AsSlice()) {
				t.Fatalf("host condition %+v re-encoded as %x, decoded as %+v (%v)", c, e, c2, err)
			}
		}
	})
}

func sameReq(a, b inetDiagReq) bool {
	eq := bytes.Equal(a.Attrs, b.Attrs)
	a.Attrs, b.Attrs = nil, nil
	return eq && reflect.DeepEqual(a, b)
}

// addrOf makes an address of family from the fuzzer's bytes.
func addrOf(b []byte, family uint8) netip.Addr {
	switch {
	case family == unix.AF_INET && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b))
	case family == unix.AF_INET6 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b))
	}
	return netip.Addr{}
}

// A dump of ten thousand sockets is read without an allocation per socket.
func TestSockDiagReadAllocatesNothing(t *testing.T) {
	dump := hexLines(t, "sockdiag-dump.hex")[0]
	d := &sockDiag{seq: binary.NativeEndian.Uint32(dump[8:])}
	var m inetDiagMsg
	var s diagSocket
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		d.answers(dump, func(p []byte) {
			if parseDiagMsg(p, &m, &s) {
				n++
			}
		})
	})
	if allocs != 0 || n == 0 {
		t.Errorf("%v allocations per dump of 2 sockets (%d read)", allocs, n)
	}
}
