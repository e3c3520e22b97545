package agents

// The tickle side of IPaddr3: the hooks ipaddr3.go calls, over package
// tickle.
//   - tickleParams are appended to IPaddr3's parameters.
//   - tickleTakeover runs as start begins: it reads the list and opens the
//     sockets while the address is added and announced; the first tickle
//     round goes out once the first announcement round is, before start
//     returns.
//   - tickleKeep runs in IPaddr3's long-lived helper process (the one that
//     sends the later announcement rounds) until ctx ends: it keeps the
//     recorded connection list fresh and sends the later tickle rounds.
//   - tickleRelease runs in stop once the address is removed: it records
//     the final list and destroys the local sockets on the address.
//   - tickleValidate checks the tickle parameters (for validate-all and
//     start).

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/storhaug/storhaug/ocf"
	"github.com/storhaug/storhaug/tickle"
)

// vipTarget is the address IPaddr3 manages, as the tickle hooks see it.
type vipTarget struct {
	Addr      netip.Addr
	Link      string // the interface the address is on
	Namespace string // network_namespace ("" for the agent's own); see internal/netnsdo
}

var tickleParams = []ocf.Param{
	{Name: "tickle", Type: ocf.Boolean, Default: "true", ShortDesc: "Reset the TCP clients of the address when it moves",
		LongDesc: `When true, TCP clients of the address reconnect within milliseconds after the address moves, instead
of hanging until keepalive or retransmission give up (minutes to hours). While the address is up, the helper process
records its established TCP connections (refreshed every tickle_refresh ms) into a file in tickle_dir; the node that
takes the address over reads that file and sends each client a "tickle" (an ACK with sequence numbers 0) from the
address, so that the client answers, gets an RST from the new owner and reconnects. Tickles go out in tickle_rounds
rounds spaced by tickle_interval, the first before start returns, after the first announcement. On stop, the address is
removed first, then the final list is recorded and the local sockets on the address are destroyed, so local services
drop them (an SMB server disconnects its durable handles); the clients hear nothing more from this node and are reset
by the new owner's tickles, so none reconnects to this node's services in between (where the kernel cannot destroy
sockets, stop says so and they stay until their services notice).
The default is true, but recording and tickling need tickle_dir: without it (as in a CIB written for IPaddr2)
IPaddr3 only destroys the local sockets on stop, and start says once that no clients are tickled. So a resource
switched from IPaddr2 starts cleanly, and setting tickle_dir turns the feature on. false turns everything off.`},
	{Name: "tickle_dir", ShortDesc: "Directory of connection lists (shared storage)",
		LongDesc: `The directory where each node records the TCP connections of its addresses, one file per address
(<address>.tickle, colons of IPv6 addresses written as _; a versioned text format, mode 0600, written atomically;
the directory is made mode 0700 if missing). It must be on storage every node that can run the address shares
(such as the CTDB recovery lock's cluster file system), else the new owner finds no list to tickle from.
Unset: nothing is recorded or tickled.`},
	{Name: "tickle_source", Type: ocf.Select, Default: "auto", Options: tickle.Sources,
		ShortDesc: "Where connections are recorded from",
		LongDesc: `sockdiag: the local sockets on the address (netlink sock_diag, as ss; always available).
conntrack: connection tracking, which also sees connections forwarded or NATed through this node (netlink; a
network namespace tracks only once some netfilter rule uses connection tracking; when it tracks nothing, or cannot
be read, the agent says so once and relies on sock_diag). auto: both, without duplicates; while conntrack shows
nothing sock_diag does not, auto reads it only every 10th time (its dump costs the kernel more).`},
	{Name: "tickle_ports", ShortDesc: "Local ports to record and tickle",
		LongDesc: `Only connections to these ports of the address are recorded, tickled and destroyed on stop: a list
of ports and ranges separated by commas, such as 445,2049,20048-20050. Unset: every port.`},
	{Name: "tickle_rounds", Type: ocf.Integer, Default: "3", ShortDesc: "Tickle rounds on takeover",
		LongDesc: `How many rounds of tickles start sends (1 to 20). The first goes out before start returns, the others
from the helper process. A client answers at most one tickle per 500 ms (Linux's tcp_invalid_ratelimit), so a
later round only helps a client whose answer to an earlier one was lost.`},
	{Name: "tickle_interval", Type: ocf.Integer, Default: "1100", ShortDesc: "Milliseconds between tickle rounds",
		LongDesc: `The time between tickle rounds, in milliseconds (600 to 60000): past Linux's 500 ms rate limit on
answers to invalid segments, as CTDB does (rounds at 0, 1.1 and 2.2 s).`},
	{Name: "tickle_refresh", Type: ocf.Integer, Default: "1000", ShortDesc: "Milliseconds between recordings",
		LongDesc: `How often the helper process records the address's connections (100 to 60000 ms). The file is
rewritten only when the list changed. Connections opened less than this long before a crash may be missed.`},
}

// tickleWanted reports whether the helper process is needed for tickles.
func tickleWanted(r *ocf.Request) bool {
	return r.Bool("tickle") && r.String("tickle_dir") != ""
}

// tickleValidate checks the tickle parameters; errors are
// OCF_ERR_CONFIGURED and name the parameter.
func tickleValidate(r *ocf.Request) error {
	_, err := tickleConfig(r, vipTarget{})
	return err
}

func tickleConfig(r *ocf.Request, t vipTarget) (tickle.Config, error) {
	cfg := tickle.Config{
		VIP: t.Addr.Unmap(), Netns: t.Namespace, Dir: r.String("tickle_dir"),
		StateDir: filepath.Join(r.StateDir(), "storhaug"), Log: r.Log,
	}
	var err error
	if cfg.Dir != "" && !filepath.IsAbs(cfg.Dir) {
		return cfg, ocf.Errorf(ocf.ErrConfigured, "parameter tickle_dir: %q is not an absolute path", cfg.Dir)
	}
	if cfg.Ports, err = tickle.ParsePorts(r.String("tickle_ports")); err != nil {
		return cfg, ocf.Errorf(ocf.ErrConfigured, "parameter tickle_ports: %w", err)
	}
	if cfg.Source, err = tickle.ParseSource(r.String("tickle_source")); err != nil {
		return cfg, ocf.Errorf(ocf.ErrConfigured, "parameter tickle_source: %w", err)
	}
	cfg.Schedule = tickle.Schedule{Rounds: r.Int("tickle_rounds"), Interval: time.Duration(r.Int("tickle_interval")) * time.Millisecond}
	if err := cfg.Schedule.Validate(); err != nil {
		p := "tickle_rounds"
		if cfg.Schedule.Rounds >= 1 && cfg.Schedule.Rounds <= 20 {
			p = "tickle_interval"
		}
		return cfg, ocf.Errorf(ocf.ErrConfigured, "parameter %s: %w", p, err)
	}
	refreshMs := r.Int("tickle_refresh")
	if refreshMs < 100 || refreshMs > 60000 {
		return cfg, ocf.Errorf(ocf.ErrConfigured, "parameter tickle_refresh: %s ms: use 100 to 60000", strconv.Itoa(refreshMs))
	}
	cfg.Refresh = time.Duration(refreshMs) * time.Millisecond
	return cfg, nil
}

// takeover is start's first round of tickles: prepared (the list read,
// the sockets opened) from the moment start begins, sent once the address
// is up and announced. A nil *takeover sends nothing.
type takeover struct {
	r    *ocf.Request
	p    *tickle.Prepared
	done bool
}

// tickleTakeover begins preparing the first round of tickles to the
// clients the old owner recorded; nil when tickles are off or tickle_dir
// is not set.
func tickleTakeover(r *ocf.Request, t vipTarget) (*takeover, error) {
	if !r.Bool("tickle") {
		return nil, nil
	}
	cfg, err := tickleConfig(r, t)
	if err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		r.Log.Infof("tickle_dir is not set: the TCP clients of %s are not tickled when it moves", t.Addr)
		return nil, nil
	}
	return &takeover{r: r, p: tickle.PrepareTakeover(cfg)}, nil
}

// send sends the prepared round and returns how many clients were
// tickled; a list that cannot be read within fsTimeout is given up.
func (tk *takeover) send() (int, error) {
	if tk == nil {
		return 0, nil
	}
	tk.done = true
	return bounded(tk.r.Context(), "reading the connection list in tickle_dir", tk.p.Send)
}

// close releases a takeover that was not sent.
func (tk *takeover) close() {
	if tk != nil && !tk.done {
		tk.p.Close()
	}
}

// fsTimeout bounds what start and stop wait for tickle_dir: a hung shared
// file system must not hold the address back.
const fsTimeout = 5 * time.Second

// bounded runs fn, giving up on it after fsTimeout or at ctx's end (fn then
// finishes, or not, in the background).
func bounded[T any](ctx context.Context, what string, fn func() (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, fsTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%s: no answer within %v (is its file system hung?)", what, fsTimeout)
	}
}

// tickleKeep keeps the connection list of the address current until ctx
// ends, and sends the later rounds of a takeover.
func tickleKeep(ctx context.Context, r *ocf.Request, t vipTarget) {
	cfg, err := tickleConfig(r, t)
	if err != nil {
		r.Log.Errorf("tickles for %s: %v", t.Addr, err)
		return
	}
	if err := tickle.Keep(ctx, cfg); err != nil {
		r.Log.Errorf("tickles for %s: %v", t.Addr, err)
	}
}

// tickleRelease records the final connection list (when tickle_dir is set)
// and destroys the local sockets on the address, which stop has removed:
// local services drop them, and the clients, which hear nothing more from
// this node, are reset by the new owner's tickles (or at their next send).
func tickleRelease(r *ocf.Request, t vipTarget) error {
	if !r.Bool("tickle") {
		return nil
	}
	cfg, err := tickleConfig(r, t)
	if err != nil {
		return err
	}
	cfg.Removed = true
	n, err := bounded(r.Context(), "recording the final connection list in tickle_dir", func() ([2]int, error) {
		recorded, destroyed, err := tickle.Release(r.Context(), cfg)
		return [2]int{recorded, destroyed}, err
	})
	recorded, destroyed := n[0], n[1]
	if errors.Is(err, tickle.ErrDestroyUnsupported) {
		r.Log.Warnf("tickle: the local sockets on %s stay until their services notice: %v", t.Addr, err)
		err = nil
	}
	if cfg.Dir != "" {
		r.Log.Infof("tickle: %d connections to %s recorded in %s; %d local sockets destroyed", recorded, t.Addr, cfg.Dir, destroyed)
	} else if destroyed > 0 {
		r.Log.Infof("tickle: %d local sockets on %s destroyed", destroyed, t.Addr)
	}
	return err
}
