package ctdb

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	pnn, m, err := readNodemap(ctx, socket)
	if err != nil {
		return Node{}, err
	}
	return nodeFromMap(m, pnn)
}

// readNodemap asks the ctdbd behind socket for its pnn and its nodemap
// (the marshalled ctdb_node_map).
func readNodemap(ctx context.Context, socket string) (pnn uint32, nodemap []byte, err error) {
	c, err := dialDaemon(ctx, socket)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	status, _, err := c.control(controlGetPNN, nil)
	if err != nil {
		return 0, nil, err
	}
	if status < 0 {
		return 0, nil, fmt.Errorf("ctdbd refused to tell its pnn (status %d)", status)
	}
	pnn = uint32(status) // GET_PNN answers in the status
	status, data, err := c.control(controlGetNodemap, nil)
	if err != nil {
		return 0, nil, err
	}
	if status != 0 {
		return 0, nil, fmt.Errorf("ctdbd refused its nodemap (status %d: %s)", status, data)
	}
	return pnn, data, nil
}

// nodeFromMap finds pnn in a marshalled ctdb_node_map.
func nodeFromMap(b []byte, pnn uint32) (Node, error) {
	var m nodeMap
	if err := m.UnmarshalBinary(b); err != nil {
		return Node{}, err
	}
	for _, n := range m {
		if n.PNN != pnn {
			continue
		}
		f := n.Flags
		addr := ""
		if n.Addr.IsValid() {
			addr = n.Addr.String()
		}
		return Node{
			PNN:          int(pnn),
			Addr:         addr,
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
	req, err := encodePacket(opReqControl, nodeCurrent, c.reqid, &reqControl{Opcode: opcode, Data: data})
	if err != nil {
		return 0, nil, err
	}
	if _, err := c.Write(req); err != nil {
		return 0, nil, c.failed(opcode, err)
	}
	for {
		p, err := readPacket(c)
		if err != nil {
			return 0, nil, c.failed(opcode, err)
		}
		if p.Operation != opReplyControl || p.ReqID != c.reqid {
			continue
		}
		var reply replyControl
		if err := reply.UnmarshalBinary(p.Body); err != nil {
			return 0, nil, fmt.Errorf("ctdbd sent a bad reply to control %d: %w", opcode, err)
		}
		if reply.Status != 0 {
			return reply.Status, trimNUL(reply.ErrMsg), nil
		}
		return 0, reply.Data, nil
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
