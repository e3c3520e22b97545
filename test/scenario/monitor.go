package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/arp"

	"github.com/storhaug/storhaug/ctdb"
	"github.com/storhaug/storhaug/test/lab"
)

// How often the monitors sample: ARP a round every arpEvery (each a
// request per VIP; the answers until the next round are that round's
// window), CTDB's leader on every live node every leaderEvery.
const (
	arpEvery    = 150 * time.Millisecond
	leaderEvery = 500 * time.Millisecond
)

// arpAnswer is one ARP reply to the client: in which round, for which VIP,
// from which MAC.
type arpAnswer struct {
	Window int
	At     time.Time
	VIP    string
	MAC    string
}

// arpViolations finds the windows in which two different MACs answered
// for the same VIP: the VIP was on two machines.
func arpViolations(answers []arpAnswer) []string {
	type key struct {
		w   int
		vip string
	}
	macs := map[key]map[string]time.Time{}
	for _, a := range answers {
		k := key{a.Window, a.VIP}
		if macs[k] == nil {
			macs[k] = map[string]time.Time{}
		}
		if _, ok := macs[k][a.MAC]; !ok {
			macs[k][a.MAC] = a.At
		}
	}
	var out []string
	for k, m := range macs {
		if len(m) < 2 {
			continue
		}
		var who []string
		for mac, at := range m {
			who = append(who, mac+" at "+at.Format("15:04:05.000"))
		}
		sort.Strings(who)
		out = append(out, fmt.Sprintf("VIP %s on two machines: ARP round %d answered by %s", k.vip, k.w, strings.Join(who, " and ")))
	}
	sort.Strings(out)
	return out
}

// leaderSample is one node's answer to "ctdb leader" in one poll round.
type leaderSample struct {
	Round  int
	At     time.Time
	Node   string
	PNN    int // the node's own pnn
	Leader int // whom it names leader
}

// leaderViolations finds the rounds in which two nodes each said they
// were the leader themselves: two CTDB leaders at once.
func leaderViolations(samples []leaderSample) []string {
	self := map[int][]string{}
	for _, s := range samples {
		if s.Leader == s.PNN && s.Leader != ctdb.UnknownPNN {
			self[s.Round] = append(self[s.Round], fmt.Sprintf("%s (pnn %d) at %s", s.Node, s.PNN, s.At.Format("15:04:05.000")))
		}
	}
	var out []string
	for round, who := range self {
		if len(who) > 1 {
			sort.Strings(who)
			out = append(out, fmt.Sprintf("two CTDB leaders in poll round %d: %s", round, strings.Join(who, ", ")))
		}
	}
	sort.Strings(out)
	return out
}

// monitors sample the invariants while a fault runs.
type monitors struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	answers []arpAnswer
	leaders []leaderSample
	windows int
	rounds  int
	errs    []string
	done    bool
	result  []string
}

// startMonitors starts the ARP sampler (from the lab's first client
// namespace) over the stack's VIPs and the CTDB leader poll over l's nodes.
func startMonitors(ctx context.Context, l *lab.Lab, s Stack, logf func(string, ...any)) (*monitors, error) {
	var vips []netip.Addr
	for v := range s.VIPs() {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, err
		}
		if a.Is4() {
			vips = append(vips, a)
		}
		// IPv6 VIPs would need ND sampling (Neighbor Solicitations);
		// no stack has one yet.
	}
	var cl *arp.Client
	c := l.Client(1)
	err := c.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		cl, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("scenario: ARP in %s: %w", c.Name(), err)
	}
	mctx, cancel := context.WithCancel(ctx)
	m := &monitors{cancel: cancel}
	self, _ := netip.ParseAddr(c.Addr4())
	m.wg.Add(3)
	go func() { // the reader: every reply to us, into the current window
		defer m.wg.Done()
		for mctx.Err() == nil {
			cl.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			p, _, err := cl.Read()
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				if mctx.Err() == nil {
					m.note("ARP read: %v", err)
				}
				return
			}
			if p.Operation != arp.OperationReply || p.TargetIP != self {
				continue
			}
			m.mu.Lock()
			m.answers = append(m.answers, arpAnswer{Window: m.windows, At: time.Now(), VIP: p.SenderIP.String(), MAC: p.SenderHardwareAddr.String()})
			m.mu.Unlock()
		}
	}()
	go func() { // the sender: a round of requests every arpEvery
		defer m.wg.Done()
		defer cl.Close()
		t := time.NewTicker(arpEvery)
		defer t.Stop()
		for {
			m.mu.Lock()
			m.windows++
			m.mu.Unlock()
			for _, v := range vips {
				if err := cl.Request(v); err != nil {
					m.note("ARP request %s: %v", v, err)
				}
			}
			select {
			case <-mctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	go func() { // the CTDB leader poll
		defer m.wg.Done()
		tools := map[string]*ctdb.Tool{}
		t := time.NewTicker(leaderEvery)
		defer t.Stop()
		for round := 1; ; round++ {
			var wg sync.WaitGroup
			var smu sync.Mutex
			var got []leaderSample
			for _, n := range l.Nodes() {
				if !n.Alive() || !n.Running("ctdbd") {
					continue
				}
				smu.Lock()
				tool := tools[n.Name()]
				smu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					qctx, cancel := context.WithTimeout(mctx, 3*time.Second)
					defer cancel()
					if tool == nil {
						var err error
						if tool, err = n.CTDB(qctx, 2*time.Second); err != nil {
							return
						}
						smu.Lock()
						tools[n.Name()] = tool
						smu.Unlock()
					}
					leader, err := tool.Leader(qctx)
					if err != nil {
						return // a node going down, ctdbd restarting
					}
					smu.Lock()
					// the lab writes CTDB's nodes file in node order
					got = append(got, leaderSample{Round: round, At: time.Now(), Node: n.Name(), PNN: n.ID() - 1, Leader: leader})
					smu.Unlock()
				}()
			}
			wg.Wait()
			m.mu.Lock()
			m.leaders = append(m.leaders, got...)
			m.rounds = round
			m.mu.Unlock()
			select {
			case <-mctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return m, nil
}

func (m *monitors) note(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) < 5 {
		m.errs = append(m.errs, fmt.Sprintf(format, args...))
	}
}

// stop ends the sampling (once) and returns the violations found and how
// many ARP windows and leader rounds were sampled.
func (m *monitors) stop() ([]string, int, int) {
	m.mu.Lock()
	if m.done {
		defer m.mu.Unlock()
		return m.result, m.windows, m.rounds
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = true
	v := append(arpViolations(m.answers), leaderViolations(m.leaders)...)
	for _, e := range m.errs {
		v = append(v, "monitor: "+e)
	}
	if m.windows < 2 || len(m.answers) == 0 {
		v = append(v, fmt.Sprintf("monitor: ARP not sampled (%d rounds, %d answers)", m.windows, len(m.answers)))
	}
	m.result = v
	return v, m.windows, m.rounds
}
