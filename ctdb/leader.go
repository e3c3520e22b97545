package ctdb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The few parts of ctdbd's client protocol (ctdb/protocol/protocol.h) that
// the leader watch needs. The ctdb tool has no command that follows the
// leader: "ctdb leader" listens for one broadcast and exits, a second's
// wait per call.
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
	headerLen          = 32
)

func packet(op, dest, reqid uint32, body []byte) []byte {
	n := headerLen + len(body)
	n += (8 - n%8) % 8
	b := make([]byte, n)
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(n))
	le.PutUint32(b[4:], protoMagic)
	le.PutUint32(b[8:], protoVersion)
	le.PutUint32(b[16:], op)
	le.PutUint32(b[20:], dest)
	le.PutUint32(b[28:], reqid)
	copy(b[headerLen:], body)
	return b
}

// controlBody is a ctdb_req_control without data: opcode, pad, srvid,
// client_id, flags, datalen.
func controlBody(opcode uint32, srvid uint64) []byte {
	b := make([]byte, 28)
	binary.LittleEndian.PutUint32(b[0:], opcode)
	binary.LittleEndian.PutUint64(b[8:], srvid)
	return b
}

func readPacket(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(h[:])
	if n < headerLen || n > 1<<24 {
		return nil, fmt.Errorf("ctdbd sent a packet of length %d", n)
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(b[4:]) != protoMagic {
		return nil, errors.New("ctdbd sent a packet without the CTDB magic")
	}
	return b, nil
}

// parseLeaderMessage returns the pnn in a CTDB_SRVID_LEADER message.
func parseLeaderMessage(b []byte) (int, bool) {
	if len(b) < headerLen+16 || binary.LittleEndian.Uint32(b[16:]) != opReqMessage {
		return 0, false
	}
	if binary.LittleEndian.Uint64(b[headerLen:]) != srvidLeader {
		return 0, false
	}
	dl := binary.LittleEndian.Uint32(b[headerLen+8:])
	if dl < 4 || len(b) < headerLen+12+4 {
		return 0, false
	}
	pnn := binary.LittleEndian.Uint32(b[headerLen+12:])
	if pnn == unknownPNN32 {
		return UnknownPNN, true
	}
	return int(pnn), true
}

// WatchLeader follows the cluster's leader as ctdbd announces it: the
// leader broadcasts its pnn every second, and UnknownPNN when an election
// starts. fn is called with every announcement, and with UnknownPNN each
// time no announcement came for silence. It returns when ctx ends (nil) or
// when the connection to ctdbd breaks (ctdbd is gone).
func WatchLeader(ctx context.Context, socket string, silence time.Duration, fn func(leader int)) error {
	conn, err := dialDaemon(ctx, socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := conn.Write(packet(opReqControl, nodeCurrent, 1, controlBody(controlRegisterSrv, srvidLeader))); err != nil {
		return err
	}
	report := fn
	for {
		conn.SetReadDeadline(time.Now().Add(silence))
		b, err := readPacket(conn)
		if ctx.Err() != nil {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			report(UnknownPNN)
			continue
		}
		if err != nil {
			return fmt.Errorf("connection to ctdbd lost: %w", err)
		}
		op := binary.LittleEndian.Uint32(b[16:])
		if op == opReplyControl && len(b) >= headerLen+4 {
			if status := int32(binary.LittleEndian.Uint32(b[headerLen:])); status != 0 {
				return fmt.Errorf("ctdbd refused to register the leader broadcast (status %d)", status)
			}
			continue
		}
		if pnn, ok := parseLeaderMessage(b); ok {
			report(pnn)
		}
	}
}
