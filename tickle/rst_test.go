package tickle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// fakeKernel plays the local kernel's TCP for the resetter, by the rules
// the fallback relies on: an out-of-window segment gets an ACK with the
// socket's real numbers (at most one per rateLimit, per socket); an RST is
// taken only when its seq is exactly rcv_nxt, one in the window gets a
// challenge ACK (same limit), others are dropped.
type fakeKernel struct {
	mu        sync.Mutex
	socks     map[Conn]*fakeSock
	rateLimit time.Duration
	ch        chan captured
	closed    bool
	noise     captured // sent with every answer: another flow's traffic
}

type fakeSock struct {
	rcvNxt, sndNxt uint32
	lastAnswer     time.Time
	reset          bool
	tickles        int
	wasted         int  // tickles within rateLimit of the last answer
	lose           int  // answers lost (sent, never seen)
	moveOnce       bool // rcv_nxt moves (client data) right after the first answer
	delayAck       bool // ... and the kernel does not ACK that data at once
	clientRST      []Segment
}

func newFakeKernel(rateLimit time.Duration) *fakeKernel {
	return &fakeKernel{socks: map[Conn]*fakeSock{}, rateLimit: rateLimit, ch: make(chan captured, 1<<14)}
}

func (k *fakeKernel) add(c Conn, rcv, snd uint32) *fakeSock {
	s := &fakeSock{rcvNxt: rcv, sndNxt: snd}
	k.socks[c] = s
	return s
}

func (k *fakeKernel) answer(c Conn, s *fakeSock) {
	now := time.Now()
	if now.Sub(s.lastAnswer) < k.rateLimit {
		s.wasted++
		return
	}
	s.lastAnswer = now
	if s.lose > 0 {
		s.lose--
		return
	}
	k.ch <- captured{Segment: Segment{Src: c.Local, Dst: c.Remote, Seq: s.sndNxt, Ack: s.rcvNxt, Flags: FlagACK, Window: 500}}
	if k.noise.Flags != 0 {
		k.ch <- k.noise
	}
	if s.moveOnce {
		// Client data arrives: rcv_nxt moves, and the kernel ACKs the data
		// (an ordinary ACK, not rate-limited), unless it delays the ACK.
		s.moveOnce = false
		s.rcvNxt += 100
		if !s.delayAck {
			k.ch <- captured{Segment: Segment{Src: c.Local, Dst: c.Remote, Seq: s.sndNxt, Ack: s.rcvNxt, Flags: FlagACK, Window: 500}}
		}
	}
}

func (k *fakeKernel) Send(seg Segment) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errors.New("closed")
	}
	if s := k.socks[Conn{Local: seg.Src, Remote: seg.Dst}]; s != nil {
		if seg.Flags&FlagRST != 0 {
			s.clientRST = append(s.clientRST, seg)
		}
		return nil
	}
	c := Conn{Local: seg.Dst, Remote: seg.Src}
	s := k.socks[c]
	if s == nil || s.reset {
		return nil
	}
	if seg.Flags&FlagRST != 0 {
		switch {
		case seg.Seq == s.rcvNxt:
			s.reset = true
		case seg.Seq-s.rcvNxt < 65535:
			k.answer(c, s) // challenge ACK
		}
		return nil
	}
	if seg.Seq != 0 || seg.Ack != 0 || seg.Flags != FlagACK || seg.Window != TickleWindow {
		return fmt.Errorf("not a tickle: %+v", seg)
	}
	s.tickles++
	k.answer(c, s)
	return nil
}

func (k *fakeKernel) Recv() (captured, error) {
	c, ok := <-k.ch
	if !ok {
		return captured{}, errors.New("closed")
	}
	return c, nil
}

func (k *fakeKernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.closed {
		k.closed = true
		close(k.ch)
	}
	return nil
}

func (k *fakeKernel) list() ([]Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var conns []Conn
	for c, s := range k.socks {
		if !s.reset {
			conns = append(conns, c)
		}
	}
	return conns, nil
}

func fakeConns(n int) []Conn {
	var conns []Conn
	for i := range n {
		vip, cl := "198.51.100.10", "198.51.100.3"
		if i%2 == 1 {
			vip, cl = "[2001:db8::10]", "[2001:db8::3]"
		}
		conns = append(conns, Conn{
			Local:  netip.MustParseAddrPort(fmt.Sprintf("%s:445", vip)),
			Remote: netip.MustParseAddrPort(fmt.Sprintf("%s:%d", cl, 40000+i)),
		})
	}
	return conns
}

func newTestResetter(k *fakeKernel) *resetter {
	return &resetter{link: k, list: k.list, tries: 3, retryAfter: 3 * k.rateLimit / 2, answerWait: 50 * time.Millisecond}
}

func TestResetterExact(t *testing.T) {
	k := newFakeKernel(50 * time.Millisecond)
	k.noise = captured{Segment: Segment{Src: netip.MustParseAddrPort("198.51.100.10:22"),
		Dst: netip.MustParseAddrPort("198.51.100.99:5555"), Seq: 7, Ack: 9, Flags: FlagACK}}
	conns := fakeConns(50)
	for i, c := range conns {
		// Numbers on both sides of the 2^31 wrap.
		k.add(c, uint32(i)*0x0badf00d, 0xfffffff0+uint32(i))
	}
	n, err := newTestResetter(k).run(context.Background())
	if err != nil || n != len(conns) {
		t.Fatalf("reset %d of %d: %v", n, len(conns), err)
	}
	for _, c := range conns {
		s := k.socks[c]
		if !s.reset || s.tickles != 1 || s.wasted != 0 {
			t.Errorf("%v: reset %v after %d tickles (%d wasted)", c, s.reset, s.tickles, s.wasted)
		}
		// The client got its RST too, at the local socket's next sequence
		// number, from VIP:port.
		if len(s.clientRST) != 1 || s.clientRST[0].Seq != s.sndNxt || s.clientRST[0].Src != c.Local || s.clientRST[0].Dst != c.Remote {
			t.Errorf("%v: client RSTs %+v, want one with seq %d", c, s.clientRST, s.sndNxt)
		}
	}
	if _, err := newTestResetter(k).run(context.Background()); err != nil {
		t.Errorf("nothing left to reset: %v", err)
	}
}

// An answer that is lost costs the socket one retry, past the rate limit,
// and the others nothing.
func TestResetterRetry(t *testing.T) {
	k := newFakeKernel(40 * time.Millisecond)
	conns := fakeConns(10)
	for i, c := range conns {
		s := k.add(c, 1000+uint32(i), 5000)
		if i < 3 {
			s.lose = 1
		}
	}
	k.socks[conns[3]].lose = 2
	start := time.Now()
	n, err := newTestResetter(k).run(context.Background())
	if err != nil || n != len(conns) {
		t.Fatalf("reset %d of %d: %v", n, len(conns), err)
	}
	for i, c := range conns {
		s := k.socks[c]
		want := 1
		switch {
		case i < 3:
			want = 2
		case i == 3:
			want = 3
		}
		if !s.reset || s.tickles != want || s.wasted != 0 {
			t.Errorf("%d: reset %v after %d tickles (want %d), %d within the rate limit", i, s.reset, s.tickles, want, s.wasted)
		}
	}
	if d := time.Since(start); d < 2*60*time.Millisecond {
		t.Errorf("three tickles in %v: not spaced past the rate limit", d)
	}
}

// Client data moving rcv_nxt between the answer and the RST: the RST is
// not exact and dropped (the challenge ACK it calls for falls within the
// per-socket rate limit of the answer just sent). The kernel's ACK of the
// data carries the new number, and the next RST is exact; without that ACK
// (delayed), the retry's answer does it.
func TestResetterRace(t *testing.T) {
	for _, delayed := range []bool{false, true} {
		k := newFakeKernel(20 * time.Millisecond)
		conns := fakeConns(4)
		for _, c := range conns {
			s := k.add(c, 77, 88)
			s.moveOnce, s.delayAck = true, delayed
		}
		n, err := newTestResetter(k).run(context.Background())
		if err != nil || n != len(conns) {
			t.Fatalf("delayed ACK %v: reset %d of %d: %v", delayed, n, len(conns), err)
		}
		want := 1
		if delayed {
			want = 2
		}
		for _, c := range conns {
			if s := k.socks[c]; s.tickles != want || len(s.clientRST) != 2 || s.wasted != 0 {
				t.Errorf("delayed ACK %v: %v: %d tickles (want %d), %d client RSTs, %d wasted", delayed, c, s.tickles, want, len(s.clientRST), s.wasted)
			}
		}
	}
}

// A socket that never answers: the others are reset, and the resetter says
// how many were left, after its tries or at the deadline.
func TestResetterGivesUp(t *testing.T) {
	k := newFakeKernel(10 * time.Millisecond)
	conns := fakeConns(5)
	for _, c := range conns {
		k.add(c, 1, 2)
	}
	k.socks[conns[2]].lose = 1 << 30
	n, err := newTestResetter(k).run(context.Background())
	if n != 4 || err == nil || !strings.Contains(err.Error(), "1 local sockets did not answer 3 tickles") {
		t.Errorf("reset %d: %v", n, err)
	}
	if s := k.socks[conns[2]]; s.tickles != 3 || s.wasted != 0 {
		t.Errorf("the silent socket: %d tickles, %d wasted", s.tickles, s.wasted)
	}

	k = newFakeKernel(10 * time.Millisecond)
	k.add(conns[0], 1, 2).lose = 1 << 30
	r := newTestResetter(k)
	r.tries = 1 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	n, err = r.run(ctx)
	if d := time.Since(start); n != 0 || err == nil || !strings.Contains(err.Error(), "left at the deadline") || d > 400*time.Millisecond {
		t.Errorf("with a deadline: reset %d in %v: %v", n, d, err)
	}
}

func TestParseCaptured(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, seg := range []Segment{
		{Src: ap("198.51.100.10:445"), Dst: ap("198.51.100.3:40000"), Seq: 0xdeadbeef, Ack: 0x01020304, Flags: FlagACK, Window: 501},
		{Src: ap("[2001:db8::10]:2049"), Dst: ap("[2001:db8::3]:1023"), Seq: 1, Ack: 0xffffffff, Flags: FlagACK | flagFIN, Window: 9},
	} {
		b := seg.Packet()
		c, ok := parseCaptured(b)
		want := uint32(0)
		if seg.Flags&flagFIN != 0 {
			want = 1
		}
		if !ok || c.Segment != seg || c.Len != want {
			t.Errorf("%v: parsed %+v %v", seg, c, ok)
		}
		// With 100 bytes of payload, said by the header but cut off by the
		// capture.
		if seg.Src.Addr().Is4() {
			binary.BigEndian.PutUint16(b[2:], 140)
		} else {
			binary.BigEndian.PutUint16(b[4:], 120)
		}
		if c, ok := parseCaptured(b); !ok || c.Len != want+100 || c.End() != seg.Seq+want+100 {
			t.Errorf("%v with payload: parsed %+v %v", seg, c, ok)
		}
	}
	// IPv4 options: a 24-byte header.
	p := Segment{Src: ap("198.51.100.10:445"), Dst: ap("198.51.100.3:40000"), Seq: 5, Ack: 6, Flags: FlagACK}.Packet()
	opt := append(append(append([]byte{}, p[:20]...), 1, 1, 1, 0), p[20:]...)
	opt[0] = 0x46
	binary.BigEndian.PutUint16(opt[2:], 44)
	if c, ok := parseCaptured(opt); !ok || c.Seq != 5 || c.Ack != 6 || c.Src.Port() != 445 || c.Len != 0 {
		t.Errorf("with IPv4 options: %+v %v", c, ok)
	}
	frag := append([]byte{}, p...)
	frag[7] = 1 // fragment offset 1
	udp := append([]byte{}, p...)
	udp[9] = 17
	for name, b := range map[string][]byte{"fragment": frag, "udp": udp, "short": p[:30], "empty": nil, "arp": {0x00, 0x01}} {
		if _, ok := parseCaptured(b); ok {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestLocalTickleAndRSTs(t *testing.T) {
	c := Conn{netip.MustParseAddrPort("[2001:db8::10]:445"), netip.MustParseAddrPort("[2001:db8::3]:40000")}
	if tk := localTickle(c); tk.Src != c.Remote || tk.Dst != c.Local || tk.Seq != 0 || tk.Ack != 0 || tk.Flags != FlagACK || tk.Window != TickleWindow {
		t.Errorf("local tickle %+v", tk)
	}
	ans := captured{Segment: Segment{Src: c.Local, Dst: c.Remote, Seq: 1000, Ack: 2000, Flags: FlagACK}, Len: 10}
	l, cl := exactRSTs(c, ans)
	if l != (Segment{Src: c.Remote, Dst: c.Local, Seq: 2000, Ack: 1010, Flags: FlagRST | FlagACK}) {
		t.Errorf("RST to the local socket %+v", l)
	}
	if cl != (Segment{Src: c.Local, Dst: c.Remote, Seq: 1010, Ack: 2000, Flags: FlagRST | FlagACK}) {
		t.Errorf("RST to the client %+v", cl)
	}
}

// The capture filter, run in x/net/bpf's VM (which lacks the packet-type
// extension: the namespace test covers that part).
func TestCaptureFilter(t *testing.T) {
	ap := netip.MustParseAddrPort
	v4 := Segment{Src: ap("198.51.100.10:445"), Dst: ap("198.51.100.3:40000"), Flags: FlagACK}.Packet()
	v4other := Segment{Src: ap("198.51.100.11:445"), Dst: ap("198.51.100.3:40000"), Flags: FlagACK}.Packet()
	v4udp := append([]byte{}, v4...)
	v4udp[9] = unix.IPPROTO_UDP
	v6 := Segment{Src: ap("[2001:db8::10]:445"), Dst: ap("[2001:db8::3]:40000"), Flags: FlagACK}.Packet()
	v6other := Segment{Src: ap("[2001:db8::11]:445"), Dst: ap("[2001:db8::3]:40000"), Flags: FlagACK}.Packet()
	v6to := Segment{Src: ap("[2001:db8::3]:40000"), Dst: ap("[2001:db8::10]:445"), Flags: FlagACK}.Packet()
	for _, tc := range []struct {
		vip    string
		pkt    []byte
		accept bool
	}{
		{"198.51.100.10", v4, true}, {"198.51.100.10", v4other, false}, {"198.51.100.10", v4udp, false},
		{"198.51.100.10", v6, false},
		{"2001:db8::10", v6, true}, {"2001:db8::10", v6other, false}, {"2001:db8::10", v6to, false},
		{"2001:db8::10", v4, false},
	} {
		vm, err := bpf.NewVM(captureFilter(netip.MustParseAddr(tc.vip), false))
		if err != nil {
			t.Fatal(err)
		}
		n, err := vm.Run(tc.pkt)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if tc.accept {
			want = captureSnap // the kernel cuts the packet to this
		}
		if n != want {
			t.Errorf("vip %s, packet %x: filter passed %d bytes, want %d", tc.vip, tc.pkt[:20], n, want)
		}
	}
	// With the packet-type check, it still assembles (the kernel runs it).
	for _, vip := range []string{"198.51.100.10", "2001:db8::10"} {
		if _, err := bpf.Assemble(captureFilter(netip.MustParseAddr(vip), true)); err != nil {
			t.Errorf("%s: %v", vip, err)
		}
	}
}

func TestDestroyUnsupported(t *testing.T) {
	for err, want := range map[error]bool{
		unix.EOPNOTSUPP: true, unix.EPERM: true, unix.ENOENT: false, unix.EINVAL: false,
		fmt.Errorf("x: %w", unix.EOPNOTSUPP): true,
	} {
		if destroyUnsupported(err) != want {
			t.Errorf("%v: unsupported %v", err, !want)
		}
	}
}
