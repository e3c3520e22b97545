package vip

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

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

func addrMsg(data []byte) *syscall.NetlinkMessage {
	return &syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWADDR}, Data: data}
}

// Real messages, as the kernel dumped them (see the testdata headers).
func TestRtnlRealMessages(t *testing.T) {
	addrs := hexLines(t, "rtm-newaddr.hex")
	if len(addrs) != 4 {
		t.Fatalf("%d address messages", len(addrs))
	}
	for _, c := range []struct {
		msg    []byte
		addr   string
		prefix int
		label  string
		flags  int
	}{
		{addrs[1], "198.51.100.10", 24, "eth0:vip", unix.IFA_F_PERMANENT},
		{addrs[3], "2001:db8::10", 64, "", unix.IFA_F_PERMANENT | unix.IFA_F_NODAD},
	} {
		a := netip.MustParseAddr(c.addr)
		st, ok := parseAddr(addrMsg(c.msg), a)
		if !ok || !st.Found || st.LinkIndex != 3 || st.Prefix != c.prefix || st.Label != c.label || st.Flags != c.flags {
			t.Errorf("%s: %+v %v", a, st, ok)
		}
		for _, other := range addrs {
			if !bytes.Equal(other, c.msg) {
				if _, ok := parseAddr(addrMsg(other), a); ok {
					t.Errorf("%s found in %x", a, other)
				}
			}
		}
	}
	links := hexLines(t, "rtm-newlink.hex")
	if len(links) != 3 {
		t.Fatalf("%d link messages", len(links))
	}
	for i, want := range []struct {
		name, mac string
		up        bool
	}{{"lo", "00:00:00:00:00:00", true}, {"eth1", "02:00:5e:10:00:02", false}, {"eth0", "02:00:5e:10:00:01", true}} {
		l, err := parseLink(links[i])
		if err != nil || l.name != want.name || l.mac.String() != want.mac || (l.flags&unix.IFF_UP != 0) != want.up {
			t.Errorf("link %d: %+v (%v), want %+v", i, l, err, want)
		}
	}
	// eth0 is up, its peer down: no carrier.
	if l, _ := parseLink(links[2]); l.operState != operLowerLayerDown {
		t.Errorf("eth0's operational state %d, want lower layer down", l.operState)
	}
}

// The link request, laid out by hand: nlmsghdr (length 32, RTM_GETLINK,
// NLM_F_REQUEST, seq, port 0), then ifinfomsg with the index.
func TestLinkRequestLayout(t *testing.T) {
	want := "20000000" + "1200" + "0100" + "07000000" + "00000000" + "00000000" + "2a000000" + "00000000" + "00000000"
	if got := hex.EncodeToString(linkRequest(42, 7)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// FuzzRtnl: address and link messages made of the fuzzer's values encode
// and decode back to themselves; arbitrary bytes either fail to decode
// (too short, or an attribute running past the end) or decode to a value
// that encodes and decodes to itself; an address found in a message is
// the one it carries.
func FuzzRtnl(f *testing.F) {
	for _, m := range hexLines(f, "rtm-newaddr.hex") {
		f.Add(m, uint32(3), "eth0:vip", []byte{198, 51, 100, 10})
	}
	for _, m := range hexLines(f, "rtm-newlink.hex") {
		f.Add(m, uint32(0x1003), "eth0", []byte{2, 0, 0x5e, 0x10, 0, 1})
	}
	f.Fuzz(func(t *testing.T, raw []byte, n uint32, name string, addr []byte) {
		name = strings.ReplaceAll(name, "\x00", "")
		ip, _ := netip.AddrFromSlice(addr)
		next, ext := netip.Addr{}, uint32(0)
		if n&1 == 1 {
			ext = n * 7 // ExtFlags only with HasExt
		}
		if ip.IsValid() {
			next = ip.Next()
		}
		made := []wireValue{
			&addrMessage{Family: uint8(n), PrefixLen: uint8(n >> 8), Flags: uint8(n >> 16), Scope: uint8(n >> 24), Index: ^n,
				Local: ip, Address: next, Label: name, ExtFlags: ext, HasExt: n&1 == 1},
			&linkMessage{Family: uint8(n), Type: uint16(n >> 3), Index: int32(n), Flags: ^n, Change: n >> 1,
				Name: name, HWAddr: addr, OperState: uint8(n>>9) * uint8(n>>1&1), HasOper: n&2 == 2}, // OperState only with HasOper
		}
		for _, v := range made {
			e, err := v.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(v).Elem()).Interface().(wireValue)
			if err := got.UnmarshalBinary(e); err != nil || !sameValue(v, got) {
				t.Fatalf("%+v encoded as %x came back as %+v (%v)", v, e, got, err)
			}
		}
		for _, v := range []wireValue{&addrMessage{}, &linkMessage{}} {
			if v.UnmarshalBinary(raw) != nil {
				continue
			}
			e, err := v.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			again := reflect.New(reflect.TypeOf(v).Elem()).Interface().(wireValue)
			if err := again.UnmarshalBinary(e); err != nil || !sameValue(v, again) {
				t.Fatalf("%+v re-encoded as %x, decoded as %+v (%v)", v, e, again, err)
			}
		}
		var a addrMessage
		if ip.IsValid() {
			if st, ok := parseAddr(addrMsg(raw), ip.Unmap()); ok {
				if a.UnmarshalBinary(raw) != nil {
					t.Fatalf("%s found in a message that does not decode", ip)
				}
				own := a.Local
				if !own.IsValid() {
					own = a.Address
				}
				if own.Unmap() != ip.Unmap() || st.LinkIndex != int(a.Index) || st.Prefix != int(a.PrefixLen) {
					t.Fatalf("%s found as %+v in %+v", ip, st, a)
				}
			}
		}
	})
}

type wireValue interface {
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// sameValue compares decoded values, an empty hardware address equal to none.
func sameValue(a, b wireValue) bool {
	if x, ok := a.(*linkMessage); ok {
		y := b.(*linkMessage)
		xc, yc := *x, *y
		if !bytes.Equal(xc.HWAddr, yc.HWAddr) {
			return false
		}
		xc.HWAddr, yc.HWAddr = nil, nil
		return reflect.DeepEqual(xc, yc)
	}
	return reflect.DeepEqual(a, b)
}
