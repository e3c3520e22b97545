package ctdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// The few parts of ctdbd's client protocol (ctdb/protocol/protocol.h) that
// the leader watch speaks, as types: a packet is a header and the body of
// one operation, little-endian (the daemon's own byte order, and every
// Linux platform CTDB runs on), its length rounded up to 8 bytes.
const (
	protoMagic         = 0x43544442 // "CTDB"
	protoVersion       = 1
	opReqMessage       = 5
	opReqControl       = 7
	opReplyControl     = 8
	controlRegisterSrv = 23
	nodeCurrent        = 0xF0000001
	srvidLeader        = 0xF101000000000000
	unknownPNN32       = 0xFFFFFFFF
	headerLen          = 32 // struct ctdb_req_header
	maxPacketLen       = 1 << 24
	pktAlign           = 8

	reqControlLen   = 28 // struct ctdb_req_control up to its data
	replyControlLen = 12 // struct ctdb_reply_control up to its data
	reqMessageLen   = 12 // struct ctdb_req_message up to its data
)

var wireLE = binary.LittleEndian

var errWireShort = errors.New("too short")

// ctdbPacket is one packet: struct ctdb_req_header (length, magic,
// version, generation, operation, destnode, srcnode, reqid) and the body.
// Decoded, Body runs to the header's length, padding included.
type ctdbPacket struct {
	Version    uint32
	Generation uint32
	Operation  uint32
	DestNode   uint32
	SrcNode    uint32
	ReqID      uint32
	Body       []byte
}

// MarshalBinary encodes the packet, its body padded with zeros to a
// multiple of 8 bytes.
func (p *ctdbPacket) MarshalBinary() ([]byte, error) {
	n := headerLen + len(p.Body)
	n += (pktAlign - n%pktAlign) % pktAlign
	if n > maxPacketLen {
		return nil, fmt.Errorf("ctdb packet of %d bytes: the limit is %d", n, maxPacketLen)
	}
	b := make([]byte, n)
	wireLE.PutUint32(b[0:], uint32(n))
	wireLE.PutUint32(b[4:], protoMagic)
	wireLE.PutUint32(b[8:], p.Version)
	wireLE.PutUint32(b[12:], p.Generation)
	wireLE.PutUint32(b[16:], p.Operation)
	wireLE.PutUint32(b[20:], p.DestNode)
	wireLE.PutUint32(b[24:], p.SrcNode)
	wireLE.PutUint32(b[28:], p.ReqID)
	copy(b[headerLen:], p.Body)
	return b, nil
}

// UnmarshalBinary decodes one packet from the start of b. Body is a part
// of b, up to the length the header declares; bytes after it are not the
// packet's.
func (p *ctdbPacket) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen {
		return fmt.Errorf("ctdb packet: %w (%d bytes, a header is %d)", errWireShort, len(b), headerLen)
	}
	n, err := packetLen(b)
	if err != nil {
		return err
	}
	if n > len(b) {
		return fmt.Errorf("ctdb packet: %w (%d bytes of the %d its header declares)", errWireShort, len(b), n)
	}
	if wireLE.Uint32(b[4:]) != protoMagic {
		return errors.New("ctdb packet without the CTDB magic")
	}
	*p = ctdbPacket{
		Version:    wireLE.Uint32(b[8:]),
		Generation: wireLE.Uint32(b[12:]),
		Operation:  wireLE.Uint32(b[16:]),
		DestNode:   wireLE.Uint32(b[20:]),
		SrcNode:    wireLE.Uint32(b[24:]),
		ReqID:      wireLE.Uint32(b[28:]),
		Body:       b[headerLen:n],
	}
	return nil
}

// packetLen is the length a packet's first 4 bytes declare, within bounds.
func packetLen(b []byte) (int, error) {
	n := wireLE.Uint32(b)
	if n < headerLen || n > maxPacketLen {
		return 0, fmt.Errorf("ctdbd sent a packet of length %d", n)
	}
	return int(n), nil
}

// readPacket reads one packet from r.
func readPacket(r io.Reader) (ctdbPacket, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return ctdbPacket{}, err
	}
	n, err := packetLen(h[:])
	if err != nil {
		return ctdbPacket{}, err
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return ctdbPacket{}, err
	}
	var p ctdbPacket
	return p, p.UnmarshalBinary(b)
}

// reqControl is the body of a control request (struct ctdb_req_control):
// opcode, pad, srvid, client_id, flags, datalen, data.
type reqControl struct {
	Opcode   uint32
	SrvID    uint64
	ClientID uint32
	Flags    uint32
	Data     []byte
}

func (c *reqControl) MarshalBinary() ([]byte, error) {
	b := make([]byte, reqControlLen+len(c.Data))
	wireLE.PutUint32(b[0:], c.Opcode)
	wireLE.PutUint64(b[8:], c.SrvID)
	wireLE.PutUint32(b[16:], c.ClientID)
	wireLE.PutUint32(b[20:], c.Flags)
	wireLE.PutUint32(b[24:], uint32(len(c.Data)))
	copy(b[reqControlLen:], c.Data)
	return b, nil
}

func (c *reqControl) UnmarshalBinary(b []byte) error {
	if len(b) < reqControlLen {
		return fmt.Errorf("ctdb control request: %w", errWireShort)
	}
	data, err := sized(b[reqControlLen:], wireLE.Uint32(b[24:]))
	if err != nil {
		return fmt.Errorf("ctdb control request: %w", err)
	}
	*c = reqControl{Opcode: wireLE.Uint32(b[0:]), SrvID: wireLE.Uint64(b[8:]), ClientID: wireLE.Uint32(b[16:]), Flags: wireLE.Uint32(b[20:]), Data: data}
	return nil
}

// replyControl is the body of a control's reply (struct
// ctdb_reply_control): status, datalen, errorlen, data, error message.
type replyControl struct {
	Status int32
	Data   []byte
	ErrMsg []byte
}

func (c *replyControl) MarshalBinary() ([]byte, error) {
	b := make([]byte, replyControlLen, replyControlLen+len(c.Data)+len(c.ErrMsg))
	wireLE.PutUint32(b[0:], uint32(c.Status))
	wireLE.PutUint32(b[4:], uint32(len(c.Data)))
	wireLE.PutUint32(b[8:], uint32(len(c.ErrMsg)))
	return append(append(b, c.Data...), c.ErrMsg...), nil
}

func (c *replyControl) UnmarshalBinary(b []byte) error {
	if len(b) < replyControlLen {
		return fmt.Errorf("ctdb control reply: %w", errWireShort)
	}
	rest := b[replyControlLen:]
	data, err := sized(rest, wireLE.Uint32(b[4:]))
	if err != nil {
		return fmt.Errorf("ctdb control reply data: %w", err)
	}
	msg, err := sized(rest[len(data):], wireLE.Uint32(b[8:]))
	if err != nil {
		return fmt.Errorf("ctdb control reply error message: %w", err)
	}
	*c = replyControl{Status: int32(wireLE.Uint32(b[0:])), Data: data, ErrMsg: msg}
	return nil
}

// reqMessage is the body of a message (struct ctdb_req_message): srvid,
// datalen, data.
type reqMessage struct {
	SrvID uint64
	Data  []byte
}

func (m *reqMessage) MarshalBinary() ([]byte, error) {
	b := make([]byte, reqMessageLen+len(m.Data))
	wireLE.PutUint64(b[0:], m.SrvID)
	wireLE.PutUint32(b[8:], uint32(len(m.Data)))
	copy(b[reqMessageLen:], m.Data)
	return b, nil
}

func (m *reqMessage) UnmarshalBinary(b []byte) error {
	if len(b) < reqMessageLen {
		return fmt.Errorf("ctdb message: %w", errWireShort)
	}
	data, err := sized(b[reqMessageLen:], wireLE.Uint32(b[8:]))
	if err != nil {
		return fmt.Errorf("ctdb message: %w", err)
	}
	*m = reqMessage{SrvID: wireLE.Uint64(b[0:]), Data: data}
	return nil
}

// sized is the first n bytes of b, or an error when b has fewer.
func sized(b []byte, n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d bytes declared, %d present", errWireShort, n, len(b))
	}
	return b[:n], nil
}

// encodePacket is a packet of operation op carrying body.
func encodePacket(op, dest, reqid uint32, body interface{ MarshalBinary() ([]byte, error) }) ([]byte, error) {
	bb, err := body.MarshalBinary()
	if err != nil {
		return nil, err
	}
	p := ctdbPacket{Version: protoVersion, Operation: op, DestNode: dest, ReqID: reqid, Body: bb}
	return p.MarshalBinary()
}

// leaderOf returns the pnn a CTDB_SRVID_LEADER message announces
// (UnknownPNN during an election); ok is false for any other packet.
func leaderOf(p *ctdbPacket) (pnn int, ok bool) {
	if p.Operation != opReqMessage {
		return 0, false
	}
	var m reqMessage
	if m.UnmarshalBinary(p.Body) != nil || m.SrvID != srvidLeader || len(m.Data) < 4 {
		return 0, false
	}
	n := wireLE.Uint32(m.Data)
	if n == unknownPNN32 {
		return UnknownPNN, true
	}
	return int(n), true
}

// nodeMap is a marshalled struct ctdb_node_map: a count, then that many
// struct ctdb_node_and_flags. An entry is pnn, flags and a ctdb_sock_addr
// (36 bytes on Linux); its size is taken from the bytes (the count divides
// them), so that a daemon built with another layout is still read.
type nodeMap []nodeAndFlags

type nodeAndFlags struct {
	PNN   uint32
	Flags uint32
	Addr  netip.Addr // of the ctdb_sock_addr; invalid for another family
	Port  uint16     // of the ctdb_sock_addr (ctdbd's port on that node)
}

// nodeEntryLen is the size of an entry this encoder writes: pnn, flags and
// a sockaddr_in6-sized address.
const nodeEntryLen = 8 + 28

func (m nodeMap) MarshalBinary() ([]byte, error) {
	b := make([]byte, 4+len(m)*nodeEntryLen)
	wireLE.PutUint32(b, uint32(len(m)))
	for i, n := range m {
		e := b[4+i*nodeEntryLen:]
		wireLE.PutUint32(e[0:], n.PNN)
		wireLE.PutUint32(e[4:], n.Flags)
		putSockaddr(e[8:nodeEntryLen], n.Addr, n.Port)
	}
	return b, nil
}

func (m *nodeMap) UnmarshalBinary(b []byte) error {
	if len(b) < 4 {
		return errors.New("ctdbd sent a short nodemap")
	}
	num := int(wireLE.Uint32(b))
	b = b[4:]
	if num == 0 || len(b)/num < 8 {
		return fmt.Errorf("ctdbd sent a nodemap of %d nodes in %d bytes", num, len(b))
	}
	stride := len(b) / num
	out := make(nodeMap, num)
	for i := range out {
		e := b[i*stride : (i+1)*stride]
		out[i] = nodeAndFlags{PNN: wireLE.Uint32(e), Flags: wireLE.Uint32(e[4:]), Addr: sockaddr(e[8:])}
		if out[i].Addr.IsValid() { // a port belongs to an address of a known family
			out[i].Port = sockaddrPort(e[8:])
		}
	}
	*m = out
	return nil
}

// The address families of a ctdb_sock_addr, a struct sockaddr: its family
// in the host's byte order, the rest in the network's.
const (
	afInet  = 2
	afInet6 = 10
)

// sockaddr reads the address of a ctdb_sock_addr.
func sockaddr(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case afInet: // family, port, address
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case afInet6: // family, port, flowinfo, address
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24]))
		}
	}
	return netip.Addr{}
}

// sockaddrPort reads the port of a ctdb_sock_addr (the network's byte
// order, after the family in both sockaddr_in and sockaddr_in6).
func sockaddrPort(b []byte) uint16 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint16(b[2:4])
}

// putSockaddr writes the ctdb_sock_addr of a and port into b (28 bytes;
// zero for an invalid address).
func putSockaddr(b []byte, a netip.Addr, port uint16) {
	if a.IsValid() {
		binary.BigEndian.PutUint16(b[2:4], port)
	}
	switch {
	case a.Is4():
		binary.NativeEndian.PutUint16(b, afInet)
		a4 := a.As4()
		copy(b[4:], a4[:])
	case a.Is6():
		binary.NativeEndian.PutUint16(b, afInet6)
		a16 := a.As16()
		copy(b[8:], a16[:])
	}
}
