package ctdb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
)

// The controls LocalNode sends (ctdb/protocol/protocol.h) and the node
// flags of a nodemap.
const (
	controlGetPNN     = 35
	controlGetNodemap = 91

	flagDisconnected       = 0x01
	flagUnhealthy          = 0x02
	flagPermanentlyDisable = 0x04
	flagBanned             = 0x08
	flagDeleted            = 0x10
	flagStopped            = 0x20
	flagsInactive          = flagDeleted | flagDisconnected | flagBanned | flagStopped
)

// LocalNode asks the ctdbd behind socket, over its own client protocol,
// for this node's pnn and flags: what "ctdb -X nodestatus" prints for
// this node, without a process. Unknown and PartiallyOnline, which the
// tool works out with further calls about other nodes and interfaces, are
// always false. A socket that is missing or refuses connections is
// ErrNotRunning. ctx bounds the whole exchange.
func LocalNode(ctx context.Context, socket string) (Node, error) {
	c, err := dialDaemon(ctx, socket)
	if err != nil {
		return Node{}, err
	}
	defer c.Close()
	status, _, err := c.control(controlGetPNN, nil)
	if err != nil {
		return Node{}, err
	}
	if status < 0 {
		return Node{}, fmt.Errorf("ctdbd refused to tell its pnn (status %d)", status)
	}
	pnn := uint32(status) // GET_PNN answers in the status
	status, data, err := c.control(controlGetNodemap, nil)
	if err != nil {
		return Node{}, err
	}
	if status != 0 {
		return Node{}, fmt.Errorf("ctdbd refused its nodemap (status %d: %s)", status, data)
	}
	return nodeFromMap(data, pnn)
}

// nodeFromMap finds pnn in a marshalled ctdb_node_map: a count, then that
// many {pnn, flags, ctdb_sock_addr} entries.
func nodeFromMap(b []byte, pnn uint32) (Node, error) {
	le := binary.LittleEndian
	if len(b) < 4 {
		return Node{}, errors.New("ctdbd sent a short nodemap")
	}
	num := int(le.Uint32(b))
	b = b[4:]
	if num == 0 || len(b)/num < 8 {
		return Node{}, fmt.Errorf("ctdbd sent a nodemap of %d nodes in %d bytes", num, len(b))
	}
	stride := len(b) / num
	for i := range num {
		e := b[i*stride : (i+1)*stride]
		if le.Uint32(e) != pnn {
			continue
		}
		f := le.Uint32(e[4:])
		return Node{
			PNN:          int(pnn),
			Addr:         sockaddrString(e[8:]),
			Disconnected: f&flagDisconnected != 0,
			Banned:       f&flagBanned != 0,
			Disabled:     f&flagPermanentlyDisable != 0,
			Unhealthy:    f&flagUnhealthy != 0,
			Stopped:      f&flagStopped != 0,
			Inactive:     f&flagsInactive != 0,
			This:         true,
		}, nil
	}
	return Node{}, fmt.Errorf("this node (pnn %d) is not in ctdbd's nodemap", pnn)
}

// sockaddrString reads the address of a ctdb_sock_addr: a struct sockaddr
// in the host's byte order for the family, the network's for the rest.
func sockaddrString(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	switch binary.NativeEndian.Uint16(b) {
	case 2: // AF_INET: family, port, address
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8])).String()
		}
	case 10: // AF_INET6: family, port, flowinfo, address
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).String()
		}
	}
	return ""
}

// daemonConn is a client connection to ctdbd's socket.
type daemonConn struct {
	net.Conn
	reqid uint32
}

func dialDaemon(ctx context.Context, socket string) (*daemonConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("%w: %v", ErrNotRunning, err)
		}
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return &daemonConn{Conn: c}, nil
}

// control sends a control to this node's ctdbd and returns its reply's
// status and data (the error message when the status is not 0), skipping
// any message that arrives in between.
func (c *daemonConn) control(opcode uint32, data []byte) (status int32, out []byte, err error) {
	c.reqid++
	body := make([]byte, 28+len(data))
	copy(body, controlBody(opcode, 0))
	binary.LittleEndian.PutUint32(body[24:], uint32(len(data)))
	copy(body[28:], data)
	if _, err := c.Write(packet(opReqControl, nodeCurrent, c.reqid, body)); err != nil {
		return 0, nil, c.failed(opcode, err)
	}
	for {
		b, err := readPacket(c)
		if err != nil {
			return 0, nil, c.failed(opcode, err)
		}
		le := binary.LittleEndian
		if le.Uint32(b[16:]) != opReplyControl || le.Uint32(b[28:]) != c.reqid {
			continue
		}
		if len(b) < headerLen+12 {
			return 0, nil, fmt.Errorf("ctdbd sent a short reply to control %d", opcode)
		}
		status = int32(le.Uint32(b[headerLen:]))
		dsize, esize := le.Uint32(b[headerLen+4:]), le.Uint32(b[headerLen+8:])
		rest := b[headerLen+12:]
		n := dsize
		if status != 0 {
			n = esize
			if int(dsize) <= len(rest) && dsize != 0 { // data, then the message
				rest = rest[dsize:]
			}
		}
		if int(n) > len(rest) {
			return 0, nil, fmt.Errorf("ctdbd sent a reply to control %d shorter than it says", opcode)
		}
		out = rest[:n]
		if status != 0 {
			out = trimNUL(out)
		}
		return status, out, nil
	}
}

func (c *daemonConn) failed(opcode uint32, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("ctdbd did not answer control %d in time (%w)", opcode, os.ErrDeadlineExceeded)
	}
	return fmt.Errorf("ctdbd control %d: %w", opcode, err)
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
