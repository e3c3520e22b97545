package agents

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/storhaug/storhaug/ocf"
	"github.com/storhaug/storhaug/vip"
)

// ocf:storhaug:IPaddr3 — a virtual IP address, managed through netlink and
// announced through packet sockets: a drop-in for ocf:heartbeat:IPaddr2
// (every IPaddr2 parameter name is accepted with IPaddr2's meaning).

// defaultArpInterval spaces announcement rounds just over Linux's default
// neighbour locktime (1 s), as CTDB and MetalLB do.
const defaultArpInterval = 1100 // ms

var ipaddr3Agent = sync.OnceValue(func() *ocf.Agent {
	return &ocf.Agent{
		Name:      "IPaddr3",
		Version:   "1.0",
		ShortDesc: "Manages a virtual IPv4 or IPv6 address through netlink (drop-in for IPaddr2)",
		LongDesc: `Adds a virtual IPv4 or IPv6 address to an interface, checks it and removes it, through netlink,
without running ip or arping; announces it to the neighbours with gratuitous ARP (a request and a reply per
round, IPv4) or unsolicited neighbour advertisements with the Override flag (IPv6). The first announcement round
is sent before start returns; later rounds are sent by a small helper process left running after start (arp_bg),
which stop ends. It accepts every parameter of ocf:heartbeat:IPaddr2 with the same meaning, so a resource can
switch its type from IPaddr2 to IPaddr3 without other edits; parameters of the modes it does not implement
(CLUSTERIP clones, LVS, mac, unique_clone_address) are refused with a reason when they ask for those modes.`,
		Params: append([]ocf.Param{
			{Name: "ip", Required: true, Unique: true, ShortDesc: "IPv4 or IPv6 address",
				LongDesc: "The virtual address, such as 192.168.1.10 or 2001:db8::10."},
			{Name: "nic", ShortDesc: "Network interface",
				LongDesc: `The interface to add the address to. When unset, it is the interface of the connected route
(not through a gateway; default, unreachable, blackhole and prohibit routes ignored) that holds the address:
the longest prefix, then the lowest metric, as IPaddr2 finds it. Required for an IPv6 link-local (fe80::) address.
The older form nic:label is accepted (the label as iflabel).`},
			{Name: "cidr_netmask", Aliases: []string{"netmask"}, ShortDesc: "Prefix length (CIDR netmask)",
				LongDesc: `The prefix length, such as 24 or 64. A dotted IPv4 netmask (255.255.255.0) is converted, with a
warning. When unset, the prefix of the matching route.`},
			{Name: "broadcast", ShortDesc: "Broadcast address (IPv4)",
				LongDesc: `The IPv4 broadcast address, or + (host bits set) or - (none). When unset, as the interface's own
address in the same subnet has it, else +. Ignored for IPv6.`},
			{Name: "iflabel", ShortDesc: "Address label (IPv4)",
				LongDesc: `A label for the address, shown as nic:label. Linux allows at most 15 characters for nic:label.
IPv6 addresses have no labels.`},
			{Name: "lvs_support", Type: ocf.Boolean, Default: "false", ShortDesc: "LVS direct routing (not implemented)",
				LongDesc: "IPaddr2's LVS-DR mode. IPaddr3 does not implement it: true is refused (OCF_ERR_CONFIGURED)."},
			{Name: "lvs_ipv6_addrlabel", Type: ocf.Boolean, Default: "false", ShortDesc: "IPv6 address label for LVS (not implemented)",
				LongDesc: "IPaddr2's IPv6 address label for LVS. IPaddr3 does not implement it: true is refused (OCF_ERR_CONFIGURED)."},
			{Name: "lvs_ipv6_addrlabel_value", Type: ocf.Integer, Default: "99", ShortDesc: "IPv6 address label value for LVS (unused)",
				LongDesc: "Used by IPaddr2 only with lvs_ipv6_addrlabel; accepted and ignored (with a warning when set)."},
			{Name: "mac", ShortDesc: "Cluster IP MAC address (not implemented)",
				LongDesc: "IPaddr2's MAC address for CLUSTERIP mode. IPaddr3 does not implement that mode: a value is refused (OCF_ERR_CONFIGURED)."},
			{Name: "clusterip_hash", Default: "sourceip-sourceport", ShortDesc: "Cluster IP hashing (unused)",
				LongDesc: `IPaddr2's hashing for CLUSTERIP mode (a clone with clone-max above 1). IPaddr3 does not implement
that mode (such a clone is refused); the parameter alone is accepted and ignored, with a warning when set.`},
			{Name: "unique_clone_address", Type: ocf.Boolean, Default: "false", ShortDesc: "A unique address per clone instance (not implemented)",
				LongDesc: "IPaddr2's per-instance addresses. IPaddr3 does not implement it: true is refused (OCF_ERR_CONFIGURED)."},
			{Name: "arp_interval", Type: ocf.Integer, Default: strconv.Itoa(defaultArpInterval), ShortDesc: "Milliseconds between announcement rounds",
				LongDesc: `The time between announcement rounds, in milliseconds. The default, 1100, is just over Linux's neighbour
locktime (1 s): a Linux peer ignores an ARP update for an address that comes within locktime of the previous one, so
rounds closer together can be wasted; CTDB and MetalLB use the same spacing. (IPaddr2's default is 200.)`},
			{Name: "arp_count", Type: ocf.Integer, Default: "5", ShortDesc: "Announcement rounds on start",
				LongDesc: `The number of announcement rounds sent on start (each: an ARP request and an ARP reply for IPv4, an
unsolicited neighbour advertisement for IPv6). The first is sent before start returns. 0 sends none.`},
			{Name: "arp_count_refresh", Type: ocf.Integer, Default: "0", ShortDesc: "Announcement rounds on each monitor",
				LongDesc: "The number of announcement rounds each monitor sends (spaced by arp_interval), to keep neighbours' caches right. 0: none."},
			{Name: "arp_bg", Type: ocf.Boolean, Default: "true", ShortDesc: "Send the later announcement rounds in the background",
				LongDesc: `When true, the rounds after the first are sent by a helper process left running after start, so start
returns at once; stop ends it. When false, start sends every round before it returns. (IPaddr2's default is true for
IPv4 and false for IPv6; IPaddr3's is true for both.)`},
			{Name: "arp_sender", ShortDesc: "ARP sender program (ignored)",
				LongDesc: "IPaddr2's choice of ARP program. IPaddr3 sends its announcements itself: accepted and ignored, with a warning."},
			{Name: "send_arp_opts", ShortDesc: "Options for the ARP sender (ignored)",
				LongDesc: "IPaddr2's extra options for its ARP program. Accepted and ignored, with a warning."},
			{Name: "flush_routes", Type: ocf.Boolean, Default: "false", ShortDesc: "Flush the route cache on stop",
				LongDesc: "Flush the route cache after removing the address on stop, so that local applications stop using it at once."},
			{Name: "run_arping", Type: ocf.Boolean, Default: "false", ShortDesc: "Check for a duplicate IPv4 address before adding it",
				LongDesc: `Before adding an IPv4 address, probe the network for another host using it (ARP probes, as arping -D
does, about 2 s); start fails if one answers. IPv6 uses duplicate address detection instead.`},
			{Name: "nodad", Type: ocf.Boolean, Default: "false", ShortDesc: "No IPv6 duplicate address detection",
				LongDesc: "Add an IPv6 address without duplicate address detection (start does not wait for it)."},
			{Name: "noprefixroute", Type: ocf.Boolean, Default: "false", ShortDesc: "No prefix route",
				LongDesc: "Do not create the route for the address's prefix (ip address add ... noprefixroute)."},
			{Name: "preferred_lft", Default: "forever", ShortDesc: "Preferred lifetime (seconds or forever)",
				LongDesc: "The address's preferred lifetime in seconds, or forever. 0 makes an IPv6 address deprecated: not chosen as a source address."},
			{Name: "network_namespace", ShortDesc: "Network namespace",
				LongDesc: "The network namespace (a name under /run/netns) to manage the address in; unset: the agent's own."},
			{Name: "check_link_status", Type: ocf.Boolean, Default: "true", ShortDesc: "Fail the monitor when the link is down",
				LongDesc: "When true, monitor reports the resource not running when its interface is down (state DOWN or LOWERLAYERDOWN)."},
		}, tickleParams...),
		Actions: []ocf.Action{
			{Name: "start", Timeout: 20 * time.Second, Handler: ipaddr3Start},
			{Name: "stop", Timeout: 20 * time.Second, Handler: ipaddr3Stop},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: ipaddr3Monitor},
			{Name: "status", Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: ipaddr3Monitor},
			{Name: "validate-all", Timeout: 20 * time.Second, Handler: ipaddr3Validate},
			{Name: vipHelperAction, Timeout: 20 * time.Second, Handler: ipaddr3Helper, Hidden: true},
		},
	}
})

// vipReq is one IPaddr3 invocation's checked parameters.
type vipReq struct {
	r        *ocf.Request
	spec     vip.Spec
	ns       string
	count    int
	refresh  int
	interval time.Duration
	warnings []string
}

// ipaddr3Params reads and checks the parameters. Nothing here touches the
// system: it costs microseconds, as every monitor pays it.
func ipaddr3Params(r *ocf.Request) (*vipReq, error) {
	v := &vipReq{r: r, ns: r.String("network_namespace")}
	switch {
	case r.Bool("lvs_support"):
		return nil, ocf.Errorf(ocf.ErrConfigured, "parameter lvs_support: LVS mode is not implemented by IPaddr3 (use IPaddr2)")
	case r.Bool("lvs_ipv6_addrlabel"):
		return nil, ocf.Errorf(ocf.ErrConfigured, "parameter lvs_ipv6_addrlabel: LVS address labels are not implemented by IPaddr3 (use IPaddr2)")
	case r.String("mac") != "":
		return nil, ocf.Errorf(ocf.ErrConfigured, "parameter mac: CLUSTERIP mode is not implemented by IPaddr3 (use IPaddr2)")
	case r.Bool("unique_clone_address"):
		return nil, ocf.Errorf(ocf.ErrConfigured, "parameter unique_clone_address: per-instance clone addresses are not implemented by IPaddr3 (use IPaddr2)")
	}
	if cm := strings.TrimSpace(r.Meta("clone_max")); cm != "" {
		if n, err := strconv.Atoi(cm); err == nil && n > 1 {
			return nil, ocf.Errorf(ocf.ErrConfigured, "clone-max %d: a cloned address (CLUSTERIP mode) is not implemented by IPaddr3 (use one primitive per address)", n)
		}
	}
	if r.IsSet("clusterip_hash") {
		v.warnings = append(v.warnings, "parameter clusterip_hash is ignored: IPaddr3 has no CLUSTERIP mode")
	}
	if r.IsSet("lvs_ipv6_addrlabel_value") {
		v.warnings = append(v.warnings, "parameter lvs_ipv6_addrlabel_value is ignored: IPaddr3 has no LVS mode")
	}
	for _, p := range []string{"arp_sender", "send_arp_opts"} {
		if r.String(p) != "" {
			v.warnings = append(v.warnings, fmt.Sprintf("parameter %s is ignored: IPaddr3 sends its announcements itself", p))
		}
	}
	spec, warn, err := vip.Parse(vip.Config{
		IP: r.String("ip"), Nic: r.String("nic"), CIDRNetmask: r.String("cidr_netmask"),
		Broadcast: r.String("broadcast"), IfLabel: r.String("iflabel"), PreferredLft: r.String("preferred_lft"),
		NoDAD: r.Bool("nodad"), NoPrefix: r.Bool("noprefixroute"),
	})
	if err != nil {
		return nil, ocf.Errorf(ocf.ErrConfigured, "%w", err)
	}
	v.spec = spec
	v.warnings = append(v.warnings, warn...)
	for _, p := range []string{"arp_count", "arp_count_refresh"} {
		if n := r.Int(p); n < 0 {
			return nil, ocf.Errorf(ocf.ErrConfigured, "parameter %s: %d is negative", p, n)
		}
	}
	v.count, v.refresh = r.Int("arp_count"), r.Int("arp_count_refresh")
	intervalMs := r.Int("arp_interval")
	if intervalMs <= 0 {
		return nil, ocf.Errorf(ocf.ErrConfigured, "parameter arp_interval: %d is not a positive number of milliseconds", intervalMs)
	}
	v.interval = time.Duration(intervalMs) * time.Millisecond
	return v, nil
}

// warn logs the warnings about the parameters (on start and validate-all
// only, not on every monitor).
func (v *vipReq) warn() {
	for _, w := range v.warnings {
		v.r.Log.Warnf("%s", w)
	}
}

// open opens the host for the address's namespace.
func (v *vipReq) open() (*vip.Host, error) { return vip.Open(v.ns) }

// resolve maps the outcome of finding the interface to OCF codes for start
// and validate-all: a missing interface or namespace is this node's problem.
func resolveErr(err error) error {
	var pe *vip.ParamError
	switch {
	case errors.As(err, &pe):
		return ocf.Errorf(ocf.ErrConfigured, "%w", err)
	case errors.Is(err, vip.ErrNoLink):
		return ocf.Errorf(ocf.ErrArgs, "parameter nic: %w on this node", err)
	case errors.Is(err, vip.ErrNoInterface), errors.Is(err, vip.ErrNoNamespace):
		return ocf.Errorf(ocf.ErrInstalled, "%w on this node", err)
	}
	return ocf.Errorf(ocf.ErrGeneric, "%w", err)
}

func (v *vipReq) target(t vip.Target) vipTarget {
	return vipTarget{Addr: v.spec.Addr, Link: t.Link, Namespace: v.ns}
}

func ipaddr3Validate(r *ocf.Request) error {
	v, err := ipaddr3Params(r)
	if err != nil {
		return err
	}
	v.warn()
	if err := tickleValidate(r); err != nil {
		return err
	}
	h, err := v.open()
	if err != nil {
		return resolveErr(err)
	}
	defer h.Close()
	if _, err := h.Resolve(v.spec); err != nil {
		return resolveErr(err)
	}
	return nil
}

func ipaddr3Start(r *ocf.Request) error {
	v, err := ipaddr3Params(r)
	if err != nil {
		return err
	}
	v.warn()
	if err := tickleValidate(r); err != nil {
		return err
	}
	if v.interval < time.Second && v.count > 1 {
		r.Log.Infof("arp_interval %v is below Linux's neighbour locktime (1 s): peers may ignore some rounds", v.interval)
	}
	t0 := time.Now()
	tk, err := tickleTakeover(r, vipTarget{Addr: v.spec.Addr, Namespace: v.ns})
	if err != nil {
		return err
	}
	defer tk.close()
	h, err := v.open()
	if err != nil {
		return resolveErr(err)
	}
	defer h.Close()
	t, err := h.Resolve(v.spec)
	if err != nil {
		return resolveErr(err)
	}
	ctx := r.Context()
	st, err := h.Lookup(t.Addr, t.LinkIndex, false)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	if ok, _ := st.Matches(t); ok && !st.Tentative() {
		r.Log.Infof("%s is already on %s", t.Addr, t.Link)
		if tickleWanted(r) && !vipHelperRunning(v) {
			if err := spawnVIPHelper(v, t, 0, time.Time{}); err != nil {
				r.Log.Errorf("%v", err)
			}
		}
		return nil
	}
	if r.Bool("run_arping") && t.Addr.Is4() && !st.Found {
		mac, err := h.ProbeARP(ctx, t, 2, time.Second)
		if err != nil {
			return ocf.Errorf(ocf.ErrGeneric, "parameter run_arping: duplicate address probe for %s: %w", t.Addr, err)
		}
		if mac != nil {
			return ocf.Errorf(ocf.ErrGeneric, "%s is already in use on %s by %s (run_arping)", t.Addr, t.Link, mac)
		}
	}
	if _, err := h.Add(t); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	if t.Addr.Is6() && !t.NoDAD {
		if err := h.WaitDAD(ctx, t); err != nil {
			if _, rerr := h.Remove(t.Addr, t.LinkIndex); rerr != nil {
				r.Log.Errorf("removing %s after duplicate address detection: %v", t.Addr, rerr)
			}
			return ocf.Errorf(ocf.ErrGeneric, "%s on %s: %w", t.Addr, t.Link, err)
		}
	}
	tAdd := time.Since(t0)
	r.Log.Infof("added %s/%d to %s", t.Addr, t.Prefix, t.Link)

	// Announce: the first round now, the others here or in the helper.
	var next time.Time
	left := 0
	if v.count > 0 {
		n := 1
		if !r.Bool("arp_bg") {
			n = v.count
		}
		sent, err := h.Announce(ctx, t, n, v.interval, time.Time{}, func(round int, err error) {
			r.Log.Errorf("announcing %s on %s, round %d: %v", t.Addr, t.Link, round, err)
		})
		switch {
		case errors.Is(err, vip.ErrNoLinkLayer):
			r.Log.Infof("%s: not announced: %v", t.Link, err)
		case err != nil:
			r.Log.Errorf("announcing %s on %s: %v", t.Addr, t.Link, err)
		default:
			if sent < n {
				r.Log.Warnf("only %d of %d announcement rounds sent before the deadline", sent, n)
			}
			left = v.count - n
			next = time.Now().Add(v.interval)
		}
	}
	tAnn := time.Since(t0)
	tickled, err := tk.send()
	if err != nil {
		r.Log.Errorf("tickles for %s: %v", t.Addr, err)
	}
	tTickle := time.Since(t0)
	if left > 0 || tickleWanted(r) {
		if err := stopVIPHelper(v); err != nil { // one from an earlier start, if any
			r.Log.Warnf("%v", err)
		}
		if err := spawnVIPHelper(v, t, left, next); err != nil {
			r.Log.Errorf("%v (%d announcement rounds not sent)", err, left)
		}
	}
	// Where a takeover's time goes, for whoever tunes a failover.
	r.Log.Infof("%s is up on %s %v after the agent began: address added at %v, first announcement out at %v, %d clients tickled at %v",
		t.Addr, t.Link, logDur(time.Since(t0)), logDur(tAdd), logDur(tAnn), tickled, logDur(tTickle))
	return nil
}

// logDur rounds a duration for a log line (to 0.1 ms).
func logDur(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

func ipaddr3Stop(r *ocf.Request) error {
	v, err := ipaddr3Params(r)
	if err != nil {
		return err
	}
	if err := stopVIPHelper(v); err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	h, err := v.open()
	if errors.Is(err, vip.ErrNoNamespace) {
		r.Log.Warnf("%v: nothing to stop", err)
		return nil
	}
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	defer h.Close()
	st, err := h.LookupOn(v.spec.Addr, v.spec.Link)
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	if st.Found {
		// The address goes first, its connections after: a client reset
		// while the address is still here (a kernel SMB client redials at
		// once) would reconnect to this node's services, on a connection
		// that dies with the address and holds the client away from the
		// new owner until TCP gives up.
		if _, err := h.Remove(v.spec.Addr, st.LinkIndex); err != nil {
			return ocf.Errorf(ocf.ErrGeneric, "%w", err)
		}
		r.Log.Infof("removed %s from %s", v.spec.Addr, st.Link)
		if err := tickleRelease(r, vipTarget{Addr: v.spec.Addr, Link: st.Link, Namespace: v.ns}); err != nil {
			r.Log.Errorf("releasing connections to %s: %v", v.spec.Addr, err)
		}
		if st, err := h.Lookup(v.spec.Addr, st.LinkIndex, false); err != nil || st.Found {
			return ocf.Errorf(ocf.ErrGeneric, "%s is still on %s after removing it (%v)", v.spec.Addr, st.Link, err)
		}
	}
	if r.Bool("flush_routes") {
		if err := h.FlushRouteCache(v.spec.Addr); err != nil {
			r.Log.Warnf("flushing the route cache: %v", err)
		}
	}
	return nil
}

// ipaddr3Monitor checks the address with one netlink address dump and one
// link request: no process, no sleep.
func ipaddr3Monitor(r *ocf.Request) error {
	v, err := ipaddr3Params(r)
	if err != nil {
		return err
	}
	st, err := vip.Check(v.ns, v.spec.Addr, v.spec.Link)
	if errors.Is(err, vip.ErrNoNamespace) {
		return ocf.Errorf(ocf.NotRunning, "%w", err)
	}
	if err != nil {
		return ocf.Errorf(ocf.ErrGeneric, "%w", err)
	}
	if !st.Found {
		return ocf.Exit(ocf.NotRunning)
	}
	if r.Bool("check_link_status") && !st.LinkUp {
		return ocf.Errorf(ocf.NotRunning, "%s is on %s, whose link is down", v.spec.Addr, st.Link)
	}
	t := vip.Target{Spec: v.spec, LinkIndex: st.LinkIndex, MAC: st.MAC}
	t.Link = st.Link
	if ok, why := st.Matches(t); !ok {
		return ocf.Errorf(ocf.ErrGeneric, "%s on %s: %s", v.spec.Addr, st.Link, why)
	}
	if v.refresh > 0 {
		h, err := v.open()
		if err != nil {
			return ocf.Errorf(ocf.ErrGeneric, "%w", err)
		}
		v.announce(h, t, v.refresh)
		h.Close()
	}
	if tickleWanted(r) && !vipHelperRunning(v) {
		r.Log.Warnf("the helper process for %s is gone: starting it again", v.spec.Addr)
		if err := spawnVIPHelper(v, t, 0, time.Time{}); err != nil {
			r.Log.Errorf("%v", err)
		}
	}
	return nil
}

// announce sends n rounds in the foreground, logging what fails.
func (v *vipReq) announce(h *vip.Host, t vip.Target, n int) {
	_, err := h.Announce(v.r.Context(), t, n, v.interval, time.Time{}, func(round int, err error) {
		v.r.Log.Errorf("announcing %s on %s, round %d: %v", t.Addr, t.Link, round, err)
	})
	if err != nil && !errors.Is(err, vip.ErrNoLinkLayer) {
		v.r.Log.Errorf("announcing %s on %s: %v", t.Addr, t.Link, err)
	}
}
