package ctdb

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/netip"
	"reflect"
	"testing"
)

// A CTDB_SRVID_LEADER broadcast as ctdbd sends it, laid out by hand from
// ctdb/protocol/protocol.h: header (length 56, "CTDB", version 1,
// generation 0x11223344, REQ_MESSAGE, destnode 0xF0000002 (broadcast
// connected), srcnode 2, reqid 0), srvid 0xF101000000000000, datalen 4,
// pnn 2: 48 bytes, a multiple of 8 without padding.
const leaderHex = "30000000" + "42445443" + "01000000" + "44332211" + "05000000" + "020000f0" + "02000000" + "00000000" +
	"00000000000001f1" + "04000000" + "02000000"

func TestLeaderPacketLayout(t *testing.T) {
	b, _ := hex.DecodeString(leaderHex)
	var p ctdbPacket
	if err := p.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if p.Version != 1 || p.Generation != 0x11223344 || p.Operation != opReqMessage || p.DestNode != 0xF0000002 || p.SrcNode != 2 || len(p.Body) != 16 {
		t.Fatalf("header decoded as %+v", p)
	}
	if pnn, ok := leaderOf(&p); !ok || pnn != 2 {
		t.Fatalf("leader %d %v, want 2", pnn, ok)
	}
	again, err := p.MarshalBinary()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoded as %x (%v), want %x", again, err, b)
	}
	// Every shorter prefix is refused, none read past its end.
	for n := range len(b) {
		if err := p.UnmarshalBinary(b[:n]); err == nil {
			t.Errorf("a %d-byte prefix decoded", n)
		}
	}
}

// FuzzCtdbPacket: whatever ctdbd (or anything on its socket) sends, a
// packet either fails to decode or decodes within the bytes and the
// length its header declares; reading it from a stream consumes exactly
// that length; its re-encoding decodes to the same packet, its body padded
// to 8 bytes with zeros.
func FuzzCtdbPacket(f *testing.F) {
	seed, _ := hex.DecodeString(leaderHex)
	f.Add(seed)
	f.Add(leaderMsg(unknownPNN32))
	f.Add(rawPacket(opReplyControl, 0, 7, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 3, 0, 0, 0, 'n', 'o', 0}))
	f.Add(rawPacket(opReplyControl, 0, 1, nodemap(nodemapEntry(0, flagBanned, [4]byte{198, 51, 100, 11}))))
	f.Add([]byte{})
	f.Add(seed[:31])
	f.Fuzz(func(t *testing.T, b []byte) {
		var p ctdbPacket
		err := p.UnmarshalBinary(b)
		r := &countingReader{r: bytes.NewReader(b)}
		q, rerr := readPacket(r)
		if err != nil {
			if rerr == nil {
				t.Fatalf("readPacket accepted what UnmarshalBinary refused (%v)", err)
			}
			return
		}
		n := int(wireLE.Uint32(b))
		if n < headerLen || n > len(b) || len(p.Body) != n-headerLen || !bytes.Equal(p.Body, b[headerLen:n]) {
			t.Fatalf("declared length %d, %d bytes, body of %d", n, len(b), len(p.Body))
		}
		if rerr != nil || r.n != n || !reflect.DeepEqual(p, q) {
			t.Fatalf("readPacket: %+v after %d bytes (%v), want %+v after %d", q, r.n, rerr, p, n)
		}
		e, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(e)%pktAlign != 0 || int(wireLE.Uint32(e)) != len(e) {
			t.Fatalf("re-encoded to %d bytes declaring %d", len(e), wireLE.Uint32(e))
		}
		var p2 ctdbPacket
		if err := p2.UnmarshalBinary(e); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		pad := p2.Body[min(len(p.Body), len(p2.Body)):]
		if len(p2.Body) < len(p.Body) || len(pad) >= pktAlign || bytes.Count(pad, []byte{0}) != len(pad) {
			t.Fatalf("body %x re-decoded as %x", p.Body, p2.Body)
		}
		p2.Body = p2.Body[:len(p.Body)]
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("decoded %+v, re-decoded %+v", p, p2)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// FuzzCtdbBodies: the bodies of control requests, control replies,
// messages and node maps. A value made of the fuzzer's numbers encodes
// and decodes back to itself; arbitrary bytes either fail to decode or
// decode to a value whose encoding decodes to the same value, its byte
// slices within the input.
func FuzzCtdbBodies(f *testing.F) {
	f.Add(uint64(srvidLeader), uint32(2), []byte{2, 0, 0, 0}, leaderMsg(2)[headerLen:])
	f.Add(uint64(0), uint32(controlGetNodemap), []byte("data"), nodemap(nodemapEntry(0, 0, [4]byte{198, 51, 100, 11}), nodemapEntry(1, 8, [4]byte{198, 51, 100, 12})))
	f.Add(uint64(1), uint32(0xffffffff), []byte(nil), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 3, 0, 0, 0, 'n', 'o', 0})
	f.Fuzz(func(t *testing.T, srvid uint64, n uint32, data, raw []byte) {
		// Made values round trip.
		made := []wireValue{
			&reqControl{Opcode: n, SrvID: srvid, ClientID: n ^ 1, Flags: n >> 3, Data: data},
			&replyControl{Status: int32(n), Data: data, ErrMsg: raw},
			&reqMessage{SrvID: srvid, Data: data},
			&nodeMap{{PNN: n, Flags: uint32(srvid), Addr: addrFrom(data)}, {PNN: uint32(srvid >> 32), Addr: addrFrom(raw)}},
		}
		for _, v := range made {
			e, err := v.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(v).Elem()).Interface().(wireValue)
			if err := got.UnmarshalBinary(e); err != nil {
				t.Fatalf("%T %+v: encoded %x does not decode: %v", v, v, e, err)
			}
			if !equalValues(v, got) {
				t.Fatalf("%T: %+v came back as %+v", v, v, got)
			}
		}
		// Arbitrary bytes: an error or a fixed point after one re-encoding.
		for _, v := range []wireValue{&reqControl{}, &replyControl{}, &reqMessage{}, &nodeMap{}} {
			if v.UnmarshalBinary(raw) != nil {
				continue
			}
			within(t, raw, v)
			e, err := v.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			again := reflect.New(reflect.TypeOf(v).Elem()).Interface().(wireValue)
			if err := again.UnmarshalBinary(e); err != nil || !equalValues(v, again) {
				t.Fatalf("%T: %+v re-encoded as %x, decoded as %+v (%v)", v, v, e, again, err)
			}
		}
	})
}

type wireValue interface {
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// addrFrom makes an address of the fuzzer's bytes: none, IPv4 or IPv6.
func addrFrom(b []byte) netip.Addr {
	switch {
	case len(b) >= 16:
		return netip.AddrFrom16([16]byte(b))
	case len(b) >= 4:
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.Addr{}
}

// equalValues compares decoded values, an empty slice equal to none.
func equalValues(a, b wireValue) bool {
	norm := func(v wireValue) any {
		switch x := v.(type) {
		case *reqControl:
			c := *x
			c.Data = bytes.Clone(c.Data)
			if len(c.Data) == 0 {
				c.Data = nil
			}
			return c
		case *replyControl:
			c := *x
			if len(c.Data) == 0 {
				c.Data = nil
			}
			if len(c.ErrMsg) == 0 {
				c.ErrMsg = nil
			}
			return c
		case *reqMessage:
			c := *x
			if len(c.Data) == 0 {
				c.Data = nil
			}
			return c
		}
		return v
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// within checks that the byte slices of a decoded value are the parts of
// raw its length fields declare (offsets from ctdb/protocol/protocol.h).
func within(t *testing.T, raw []byte, v wireValue) {
	t.Helper()
	part := func(off int, n uint32) []byte { return raw[off : off+int(n)] }
	ok := true
	switch x := v.(type) {
	case *reqControl:
		ok = bytes.Equal(x.Data, part(28, wireLE.Uint32(raw[24:])))
	case *replyControl:
		d, e := wireLE.Uint32(raw[4:]), wireLE.Uint32(raw[8:])
		ok = bytes.Equal(x.Data, part(12, d)) && bytes.Equal(x.ErrMsg, part(12+int(d), e))
	case *reqMessage:
		ok = bytes.Equal(x.Data, part(12, wireLE.Uint32(raw[8:])))
	case *nodeMap:
		ok = len(*x) == int(wireLE.Uint32(raw)) && len(*x)*8 <= len(raw)-4
	}
	if !ok {
		t.Fatalf("%T decoded from %x as %+v", v, raw, v)
	}
}
