package nsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ONC RPC (RFC 5531) numbers used here.
const (
	rpcVersion = 2
	msgCall    = 0
	msgReply   = 1

	// ProgPortmap is the portmapper (rpcbind version 2, RFC 1833).
	progPortmap   = 100000
	versPortmap   = 2
	procGetport   = 3
	ipprotoUDP    = 17
	progStatus    = 100024 // NSM
	versStatus    = 1
	procSMNotify  = 6
	maxMonNameLen = 1024 // SM_MAXSTRLEN
)

// callHeader is an RPC call message's header with AUTH_NULL credential and
// verifier.
type callHeader struct {
	XID, Prog, Vers, Proc uint32
}

func (h callHeader) append(b []byte) []byte {
	for _, v := range []uint32{h.XID, msgCall, rpcVersion, h.Prog, h.Vers, h.Proc, 0, 0, 0, 0} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// getportArgs are PMAPPROC_GETPORT's arguments (struct mapping).
type getportArgs struct {
	Prog, Vers, Prot, Port uint32
}

func (a getportArgs) append(b []byte) []byte {
	for _, v := range []uint32{a.Prog, a.Vers, a.Prot, a.Port} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// statChge is SM_NOTIFY's argument: the name of the host that restarted
// (as its peers monitor it) and its new state number.
type statChge struct {
	MonName string
	State   int32
}

func (s statChge) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.MonName)))
	b = append(b, s.MonName...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return binary.BigEndian.AppendUint32(b, uint32(s.State))
}

// decoder reads XDR items from a message.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("rpc: message too short")

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

// opaque reads variable-length opaque data of at most max bytes.
func (d *decoder) opaque(max int) []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if n > uint32(max) {
		d.err = fmt.Errorf("rpc: opaque of %d bytes (at most %d)", n, max)
		return nil
	}
	padded := (int(n) + 3) &^ 3
	if len(d.b) < padded {
		d.err = errShort
		return nil
	}
	v := d.b[:n]
	d.b = d.b[padded:]
	return v
}

// ReplyError is an RPC reply that is not a success.
type ReplyError struct {
	Denied bool   // MSG_DENIED (else MSG_ACCEPTED with an error)
	Stat   uint32 // reject_stat or accept_stat
}

func (e *ReplyError) Error() string {
	if e.Denied {
		return fmt.Sprintf("rpc: call rejected (reject_stat %d)", e.Stat)
	}
	names := map[uint32]string{1: "program unavailable", 2: "program version mismatch", 3: "procedure unavailable", 4: "garbage arguments", 5: "system error"}
	if n, ok := names[e.Stat]; ok {
		return "rpc: " + n
	}
	return fmt.Sprintf("rpc: accept_stat %d", e.Stat)
}

// reply is a decoded RPC reply message.
type reply struct {
	XID     uint32
	Results []byte // the procedure's results (success only)
}

// decodeReply decodes an RPC reply message. A reply whose status is not a
// success decodes with a *ReplyError.
func decodeReply(b []byte) (reply, error) {
	d := &decoder{b: b}
	r := reply{XID: d.u32()}
	if mt := d.u32(); d.err == nil && mt != msgReply {
		return r, fmt.Errorf("rpc: message type %d is not a reply", mt)
	}
	stat := d.u32()
	if d.err != nil {
		return r, d.err
	}
	switch stat {
	case 0: // MSG_ACCEPTED
		d.u32()       // verifier flavor
		d.opaque(400) // verifier body (MAX_AUTH_BYTES)
		as := d.u32()
		if d.err != nil {
			return r, d.err
		}
		if as != 0 {
			return r, &ReplyError{Stat: as}
		}
		r.Results = d.b
		return r, nil
	case 1: // MSG_DENIED
		rs := d.u32()
		if d.err != nil {
			return r, d.err
		}
		return r, &ReplyError{Denied: true, Stat: rs}
	default:
		return r, fmt.Errorf("rpc: reply status %d", stat)
	}
}

// decodePort decodes GETPORT's result.
func decodePort(results []byte) (uint16, error) {
	d := &decoder{b: results}
	p := d.u32()
	if d.err != nil {
		return 0, d.err
	}
	if p > 65535 {
		return 0, fmt.Errorf("portmapper: port %d out of range", p)
	}
	return uint16(p), nil
}
