package tickle

// The exact-RST fallback of Release, for kernels that cannot destroy sockets
// (built without CONFIG_INET_DIAG_DESTROY, or no CAP_NET_ADMIN): the local
// end of each connection on the VIP is tickled as a client would be. A
// tickle FROM client:port TO VIP:port reaches the local socket through
// loopback routing; the socket answers the out-of-window segment with an
// ACK carrying its real sequence numbers (to the client, out of the
// interface, where a packet socket sees it going); an RST from client:port
// whose seq is that ACK's ack number is then an exact match, and the local
// service's socket gets ECONNRESET. As SOCK_DESTROY does, the client gets an
// RST too (seq = the local socket's next sequence number).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// More TCP flags.
const (
	flagFIN = 0x01
	flagSYN = 0x02
)

// captured is a TCP segment the local kernel sent from the VIP, as a capture
// saw it. Len is its length in sequence space (payload, SYN and FIN).
type captured struct {
	Segment
	Len uint32
}

// End is the sequence number after the segment: the sender's next one.
func (c captured) End() uint32 { return c.Seq + c.Len }

// parseCaptured reads an IPv4 or IPv6 packet (from its network header,
// possibly truncated after the TCP header) carrying TCP.
func parseCaptured(b []byte) (captured, bool) {
	var c captured
	if len(b) < 1 {
		return c, false
	}
	var tcp []byte
	var total int // the IP packet's length, as its header says
	var hdr int
	switch b[0] >> 4 {
	case 4:
		hdr = int(b[0]&0x0f) * 4
		if hdr < 20 || len(b) < hdr+20 || b[9] != 6 || binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			return c, false
		}
		total = int(binary.BigEndian.Uint16(b[2:]))
		c.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:16])), 0)
		c.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[16:20])), 0)
	case 6:
		hdr = 40
		if len(b) < hdr+20 || b[6] != 6 {
			return c, false
		}
		total = hdr + int(binary.BigEndian.Uint16(b[4:]))
		c.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), 0)
		c.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), 0)
	default:
		return c, false
	}
	tcp = b[hdr:]
	c.Src = netip.AddrPortFrom(c.Src.Addr(), binary.BigEndian.Uint16(tcp[0:]))
	c.Dst = netip.AddrPortFrom(c.Dst.Addr(), binary.BigEndian.Uint16(tcp[2:]))
	c.Seq = binary.BigEndian.Uint32(tcp[4:])
	c.Ack = binary.BigEndian.Uint32(tcp[8:])
	doff := int(tcp[12]>>4) * 4
	c.Flags = tcp[13]
	c.Window = binary.BigEndian.Uint16(tcp[14:])
	if doff < 20 {
		return c, false
	}
	// A length field of 0 (an IPv6 jumbogram / BIG TCP) leaves the payload
	// unknown: counted as none. It only makes the client's RST inexact,
	// which the client answers with an ACK that still resets it (below).
	if payload := total - hdr - doff; payload > 0 {
		c.Len = uint32(payload)
	}
	if c.Flags&flagSYN != 0 {
		c.Len++
	}
	if c.Flags&flagFIN != 0 {
		c.Len++
	}
	return c, true
}

// localTickle is the segment that makes the LOCAL end of c answer with its
// real sequence numbers: from the client, seq 0, ack 0.
func localTickle(c Conn) Segment {
	return Segment{Src: c.Remote, Dst: c.Local, Flags: FlagACK, Window: TickleWindow}
}

// exactRSTs are the resets an answer of the local end of c calls for: to
// the local socket, seq = the ack number it sent (its rcv_nxt: an exact
// match), and to the client, seq = the local socket's next sequence number.
func exactRSTs(c Conn, answer captured) (local, client Segment) {
	local = Segment{Src: c.Remote, Dst: c.Local, Seq: answer.Ack, Ack: answer.End(), Flags: FlagRST | FlagACK}
	client = Segment{Src: c.Local, Dst: c.Remote, Seq: answer.End(), Ack: answer.Ack, Flags: FlagRST | FlagACK}
	return local, client
}

// rstLink is what the fallback needs of the OS: sending raw segments, and
// seeing the TCP segments the local kernel sends from the VIP.
type rstLink interface {
	Send(Segment) error
	// Recv blocks until the next segment sent from the VIP, or until Close.
	Recv() (captured, error)
	Close() error
}

// resetter resets the local sockets on a VIP with exact RSTs.
type resetter struct {
	link rstLink
	// list returns the established local sockets on the VIP now (those the
	// port filter lets through).
	list func() ([]Conn, error)
	// tries is how many tickles a socket gets at most; retryAfter spaces
	// them (past Linux's 500 ms per-socket limit on answers to invalid
	// segments); answerWait is how long a pass waits for answers after its
	// last tickle (they come from this host's kernel: in microseconds).
	tries      int
	retryAfter time.Duration
	answerWait time.Duration
}

const (
	rstTries      = 3
	rstRetryAfter = 600 * time.Millisecond
	rstAnswerWait = 200 * time.Millisecond
)

type rstState struct {
	tickles int
	last    time.Time // the last tickle
	waiting bool      // tickled in this pass, not answered yet
	rstSent bool
	rstSeq  uint32
}

// run resets every socket list returns, in passes: each socket due gets a
// tickle, each answer an exact RST at once; sockets still there after a
// pass get another tickle retryAfter after their last. It ends when list
// returns none, when every socket left had its tries, or at ctx's end, and
// returns how many sockets it reset. It closes the link.
func (r *resetter) run(ctx context.Context) (reset int, err error) {
	caps := make(chan captured, 1024)
	done := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			c, err := r.link.Recv()
			if err != nil {
				return
			}
			select {
			case caps <- c:
			case <-done:
				return
			}
		}
	}()
	defer func() {
		close(done)
		r.link.Close()
		<-readerDone
	}()

	state := map[Conn]*rstState{}
	var sendErrs []error
	count := func(left []Conn) int {
		gone := make(map[Conn]bool, len(state))
		for c, st := range state {
			gone[c] = st.rstSent
		}
		for _, c := range left {
			gone[c] = false
		}
		n := 0
		for _, g := range gone {
			if g {
				n++
			}
		}
		return n
	}
	send := func(s Segment) {
		if err := r.link.Send(s); err != nil && len(sendErrs) < 3 {
			sendErrs = append(sendErrs, err)
		}
	}
	// handle reacts to one captured segment; it reports whether it was the
	// first answer of a socket tickled in this pass.
	handle := func(seg captured) bool {
		c := NewConn(seg.Src, seg.Dst)
		st := state[c]
		if st == nil || seg.Flags&FlagACK == 0 || seg.Flags&(FlagRST|flagSYN) != 0 {
			return false // not a socket of ours, or no usable ack number
		}
		if !st.rstSent || st.rstSeq != seg.Ack {
			l, cl := exactRSTs(c, seg)
			send(l)
			send(cl)
			st.rstSent, st.rstSeq = true, seg.Ack
		}
		first := st.waiting
		st.waiting = false
		return first
	}
	drain := func() {
		for {
			select {
			case seg := <-caps:
				handle(seg)
			default:
				return
			}
		}
	}
	fail := func(left []Conn, err error) (int, error) {
		return count(left), errors.Join(append([]error{err}, sendErrs...)...)
	}

	for {
		conns, err := r.list()
		if err != nil {
			return fail(nil, err)
		}
		if len(conns) == 0 {
			return count(nil), errors.Join(sendErrs...)
		}
		now := time.Now()
		var due []Conn
		var next time.Time
		for _, c := range conns {
			st := state[c]
			if st == nil {
				st = &rstState{}
				state[c] = st
			}
			switch {
			case st.tickles >= r.tries:
			case st.tickles == 0 || now.Sub(st.last) >= r.retryAfter:
				due = append(due, c)
			default:
				if at := st.last.Add(r.retryAfter); next.IsZero() || at.Before(next) {
					next = at
				}
			}
		}
		if ctx.Err() != nil {
			return fail(conns, fmt.Errorf("%d local sockets left at the deadline", len(conns)))
		}
		if len(due) == 0 {
			if next.IsZero() {
				return fail(conns, fmt.Errorf("%d local sockets did not answer %d tickles (or took no exact RST)", len(conns), r.tries))
			}
			t := time.NewTimer(time.Until(next))
		wait:
			for {
				select {
				case seg := <-caps:
					handle(seg)
				case <-t.C:
					break wait
				case <-ctx.Done():
					t.Stop()
					break wait
				}
			}
			continue
		}

		// One pass: a tickle to each socket due, answers handled as they come.
		pending := len(due)
		for _, c := range due {
			st := state[c]
			st.tickles++
			st.last = time.Now()
			st.waiting = true
			send(localTickle(c))
			drain()
		}
		for _, c := range due {
			if !state[c].waiting {
				pending--
			}
		}
		t := time.NewTimer(r.answerWait)
	answers:
		for pending > 0 {
			select {
			case seg := <-caps:
				if handle(seg) {
					pending--
				}
			case <-t.C:
				break answers
			case <-ctx.Done():
				break answers
			}
		}
		t.Stop()
		for _, c := range due {
			state[c].waiting = false
		}
	}
}
