package tickle

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/netnsdo"
)

// rawLink is the OS side of the exact-RST fallback: raw IP sockets to send
// (a segment to a local address is delivered through loopback routing) and
// a packet socket on every interface of the namespace that sees the TCP
// segments going out from the VIP (PACKET_OUTGOING; the answers go to the
// client, out of whatever interface routes to it). A kernel filter keeps
// everything else out of the socket.
type rawLink struct {
	s   *Sender
	pc  *packet.Conn
	buf []byte
}

// captureSnap is how much of a packet the filter passes: the largest IPv4
// header (60) or the IPv6 one (40), and a TCP header without options.
const captureSnap = 80

func openRawLink(netns string, vip netip.Addr) (*rawLink, error) {
	s, err := OpenSender(netns)
	if err != nil {
		return nil, err
	}
	l := &rawLink{s: s, buf: make([]byte, captureSnap)}
	prog, err := bpf.Assemble(captureFilter(vip, true))
	if err != nil {
		s.Close()
		return nil, err
	}
	err = netnsdo.Do(netns, func() error {
		// Index 0: every interface. ETH_P_ALL: only such sockets see
		// outgoing packets. The filter is set before bind.
		pc, err := packet.Listen(&net.Interface{Index: 0}, packet.Datagram, unix.ETH_P_ALL, &packet.Config{Filter: prog})
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		l.pc = pc
		// Room for a burst of answers (one per socket) while they are read.
		if rc, err := pc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
				}
			})
		}
		return nil
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	return l, nil
}

func (l *rawLink) Send(s Segment) error { return l.s.Send(s) }

func (l *rawLink) Recv() (captured, error) {
	for {
		n, _, err := l.pc.ReadFrom(l.buf)
		if err != nil {
			return captured{}, err
		}
		if c, ok := parseCaptured(l.buf[:n]); ok {
			return c, nil
		}
	}
}

func (l *rawLink) Close() error {
	l.pc.Close()
	return l.s.Close()
}

// captureFilter is a classic BPF program for a cooked (SOCK_DGRAM) packet
// socket, whose packets start at the network header: it passes the first
// captureSnap bytes of TCP packets from vip (IPv4 or IPv6 as vip is), and,
// with outgoing, only those going out (skb->pkt_type PACKET_OUTGOING).
func captureFilter(vip netip.Addr, outgoing bool) []bpf.Instruction {
	var p []bpf.Instruction
	var jumps []int
	check := func(load bpf.Instruction, mask, val uint32) {
		p = append(p, load)
		if mask != 0 {
			p = append(p, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
		}
		jumps = append(jumps, len(p))
		p = append(p, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: val})
	}
	if outgoing {
		check(bpf.LoadExtension{Num: bpf.ExtType}, 0, unix.PACKET_OUTGOING)
	}
	if vip.Is4() {
		a := vip.As4()
		check(bpf.LoadAbsolute{Off: 0, Size: 1}, 0xf0, 0x40)
		check(bpf.LoadAbsolute{Off: 9, Size: 1}, 0, unix.IPPROTO_TCP)
		check(bpf.LoadAbsolute{Off: 12, Size: 4}, 0, binary.BigEndian.Uint32(a[:]))
	} else {
		a := vip.As16()
		check(bpf.LoadAbsolute{Off: 0, Size: 1}, 0xf0, 0x60)
		check(bpf.LoadAbsolute{Off: 6, Size: 1}, 0, unix.IPPROTO_TCP)
		for i := 0; i < 16; i += 4 {
			check(bpf.LoadAbsolute{Off: uint32(8 + i), Size: 4}, 0, binary.BigEndian.Uint32(a[i:]))
		}
	}
	p = append(p, bpf.RetConstant{Val: captureSnap})
	reject := len(p)
	p = append(p, bpf.RetConstant{Val: 0})
	for _, j := range jumps {
		jf := p[j].(bpf.JumpIf)
		jf.SkipTrue = uint8(reject - j - 1)
		p[j] = jf
	}
	return p
}

// resetLocal resets the local sockets on the Recorder's VIP (those its port
// filter passes) with exact RSTs, within ctx; it returns how many it reset.
func resetLocal(ctx context.Context, netns string, rec *Recorder) (int, error) {
	link, err := openRawLink(netns, rec.VIP)
	if err != nil {
		return 0, err
	}
	r := &resetter{
		link:       link,
		tries:      rstTries,
		retryAfter: rstRetryAfter,
		answerWait: rstAnswerWait,
		list: func() ([]Conn, error) {
			var conns []Conn
			err := rec.diag.established(rec.VIP, func(s *diagSocket) {
				if rec.Ports.Has(s.local.Port()) {
					conns = append(conns, NewConn(s.local, s.peer))
				}
			})
			return conns, err
		},
	}
	return r.run(ctx)
}
