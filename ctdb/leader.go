package ctdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// WatchLeader follows the cluster's leader as ctdbd announces it: the
// leader broadcasts its pnn every second, and UnknownPNN when an election
// starts. fn is called with every announcement, and with UnknownPNN each
// time no announcement came for silence. It returns when ctx ends (nil) or
// when the connection to ctdbd breaks (ctdbd is gone).
//
// The ctdb tool has no command that follows the leader ("ctdb leader"
// listens for one broadcast and exits, a second's wait per call): the
// watch speaks ctdbd's client protocol itself (wire.go).
func WatchLeader(ctx context.Context, socket string, silence time.Duration, fn func(leader int)) error {
	conn, err := dialDaemon(ctx, socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req, err := encodePacket(opReqControl, nodeCurrent, 1, &reqControl{Opcode: controlRegisterSrv, SrvID: srvidLeader})
	if err != nil {
		return err
	}
	if _, err := conn.Write(req); err != nil {
		return err
	}
	report := fn
	for {
		conn.SetReadDeadline(time.Now().Add(silence))
		p, err := readPacket(conn)
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
		if p.Operation == opReplyControl {
			var reply replyControl
			if err := reply.UnmarshalBinary(p.Body); err != nil {
				return fmt.Errorf("registering the leader broadcast: %w", err)
			}
			if reply.Status != 0 {
				return fmt.Errorf("ctdbd refused to register the leader broadcast (status %d)", reply.Status)
			}
			continue
		}
		if pnn, ok := leaderOf(&p); ok {
			report(pnn)
		}
	}
}
