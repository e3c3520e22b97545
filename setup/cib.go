package setup

import (
	"net/netip"
	"strconv"
	"strings"
)

// IDPrefix begins the id of every CIB object storhaug creates: teardown and
// re-runs touch only objects whose id has it.
const IDPrefix = "storhaug-"

// Marker is the description storhaug gives the resources (and offline
// node entries) it creates.
const Marker = "storhaug"

// Owned reports whether a CIB id is storhaug's.
func Owned(id string) bool { return strings.HasPrefix(id, IDPrefix) }

// Agent parameter names, as the storhaug agents declare them.
const (
	paramIP          = "ip"
	paramCidr        = "cidr_netmask"
	paramNic         = "nic"
	paramTickle      = "tickle"
	paramTickleDir   = "tickle_dir"
	paramCTDBLock    = "ctdb_recovery_lock"
	paramCTDBSamba   = "ctdb_manages_samba"
	paramCTDBConfDir = "ctdb_config_dir"
	paramGaneshaConf = "config"
	paramGaneshaMnt  = "state_mnt"
	paramScope       = "server_scope"
	paramTickleSrc   = "tickle_source"
	paramTicklePorts = "tickle_ports"
)

// Resource ids.
const (
	idCTDB         = IDPrefix + "ctdb"
	idCTDBClone    = IDPrefix + "ctdb-clone"
	idSamba        = IDPrefix + "samba"
	idSambaClone   = IDPrefix + "samba-clone"
	idState        = IDPrefix + "nfs-state"
	idStateClone   = IDPrefix + "nfs-state-clone"
	idGanesha      = IDPrefix + "ganesha"
	idGaneshaClone = IDPrefix + "ganesha-clone"
	idReady        = IDPrefix + "ready"
	idReadyClone   = IDPrefix + "ready-clone"
)

// AttrReady is the transient node attribute that says the services the
// VIPs depend on run on the node: 1 once they have started there
// (ocf:pacemaker:attribute, started after them), 0 once they stop, absent
// on a node that has just joined.
const AttrReady = "storhaug-ready"

// VIPID is the resource id of a virtual address. It is made from the
// address, not its position, so that adding or removing another address
// never renames (and so restarts) this one.
func VIPID(a netip.Addr) string { return xmlID(IDPrefix + "vip-" + a.String()) }

func triggerID(a netip.Addr) string      { return VIPID(a) + "-trigger" }
func triggerCloneID(a netip.Addr) string { return VIPID(a) + "-trigger-clone" }

// Options adjust the model to the cluster it is applied to.
type Options struct {
	// LegacyRoles writes role="Master" for CIBs validated against schemas
	// older than pacemaker-3.7, which do not know "Promoted".
	LegacyRoles bool
	// NoInfluence leaves out the influence attribute of colocations for
	// CIBs validated against schemas older than pacemaker-3.6 (before
	// Pacemaker 2.1, which does not know it).
	NoInfluence bool
}

// Model is the Pacemaker configuration a Config describes.
type Model struct {
	Resources   []*Element                   // top-level primitives and clones, in creation order
	Constraints []*Element                   // locations, colocations, orders
	NodeAttrs   map[string]map[string]string // node name -> permanent node attributes
	Properties  [][2]string                  // cluster properties (only those the config sets)
	Nodes       []string                     // the cluster's nodes
}

// Homes returns the home node of every VIP.
func (c *Config) Homes() []string {
	h := make([]string, len(c.VIPs))
	for i := range c.VIPs {
		h[i] = c.VIPHome(i)
	}
	return h
}

type builder struct {
	o   Options
	m   *Model
	cfg *Config
}

func nvset(tag, id string, pairs [][2]string) *Element {
	s := E(tag, "id", id)
	for _, p := range pairs {
		s.Add(E("nvpair", "id", xmlID(id+"-"+p[0]), "name", p[0], "value", p[1]))
	}
	return s
}

type opSpec struct {
	name, interval, timeout, role string
}

func (b *builder) primitive(id, class, provider, typ string, params, meta [][2]string, ops []opSpec) *Element {
	if b.cfg.FailureTimeout != "" {
		meta = append(append([][2]string(nil), meta...), [2]string{"failure-timeout", b.cfg.FailureTimeout})
	}
	return primitive(id, class, provider, typ, params, meta, ops)
}

func primitive(id, class, provider, typ string, params, meta [][2]string, ops []opSpec) *Element {
	p := E("primitive", "id", id, "class", class)
	if provider != "" {
		p.Set("provider", provider)
	}
	p.Set("type", typ)
	p.Set("description", Marker)
	if len(params) > 0 {
		p.Add(nvset("instance_attributes", id+"-instance_attributes", params))
	}
	if len(meta) > 0 {
		p.Add(nvset("meta_attributes", id+"-meta_attributes", meta))
	}
	if len(ops) > 0 {
		o := E("operations")
		for _, op := range ops {
			opID := id + "-" + op.name + "-interval-" + op.interval
			if op.role != "" {
				opID += "-" + strings.ToLower(op.role)
			}
			e := E("op", "id", xmlID(opID), "name", op.name, "interval", op.interval, "timeout", op.timeout)
			if op.role != "" {
				e.Set("role", op.role)
			}
			o.Add(e)
		}
		p.Add(o)
	}
	return p
}

func clone(id string, child *Element, meta [][2]string) *Element {
	c := E("clone", "id", id, "description", Marker)
	if len(meta) > 0 {
		c.Add(nvset("meta_attributes", id+"-meta_attributes", meta))
	}
	return c.Add(child)
}

// onStorage keeps rsc on nodes with role=storage, and probes only there.
func onStorage(rsc string) *Element {
	id := rsc + "-on-storage"
	return E("rsc_location", "id", id, "rsc", rsc, "resource-discovery", "exclusive").Add(
		E("rule", "id", id+"-rule", "score", "0").Add(
			E("expression", "id", id+"-rule-expr", "attribute", "role", "operation", "eq", "value", "storage")))
}

// notOnOthers bans rsc from nodes without role=storage.
func notOnOthers(rsc string) *Element {
	id := rsc + "-not-on-others"
	return E("rsc_location", "id", id, "rsc", rsc).Add(
		E("rule", "id", id+"-rule", "score", "-INFINITY", "boolean-op", "or").Add(
			E("expression", "id", id+"-rule-undef", "attribute", "role", "operation", "not_defined"),
			E("expression", "id", id+"-rule-expr", "attribute", "role", "operation", "ne", "value", "storage")))
}

func colocate(rsc, with string) *Element {
	return E("rsc_colocation", "id", rsc+"-with-"+strings.TrimPrefix(with, IDPrefix), "rsc", rsc, "with-rsc", with, "score", "INFINITY")
}

// follow keeps the VIP rsc where the service clone with runs, without
// letting the VIP's preferences place the clone (influence=false). With
// them, when a node comes back, the VIPs whose home it is pull a clone
// instance from a survivor to it and Pacemaker starts a new instance on the
// survivor: a restart of CTDB or ganesha there, and of the VIPs it serves.
func (b *builder) follow(rsc, with string) *Element {
	c := colocate(rsc, with)
	if !b.o.NoInfluence {
		c.Set("influence", "false")
	}
	return c
}

func order(first, then string) *Element {
	return E("rsc_order", "id", first+"-then-"+strings.TrimPrefix(then, IDPrefix), "first", first, "then", then, "kind", "Mandatory")
}

func prefers(rsc, node string, score int) *Element {
	return E("rsc_location", "id", xmlID(rsc+"-prefers-"+node), "rsc", rsc, "node", node, "score", strconv.Itoa(score))
}

// prefersReady is prefers, on node only while its services run there
// (AttrReady is 1): a node that comes back gets its addresses once they
// can be served, not in the transition that starts the services, which
// would leave them down while CTDB and ganesha start.
func prefersReady(rsc, node string, score int) *Element {
	id := xmlID(rsc + "-prefers-" + node)
	return E("rsc_location", "id", id, "rsc", rsc).Add(
		E("rule", "id", id+"-rule", "score", strconv.Itoa(score), "boolean-op", "and").Add(
			E("expression", "id", id+"-rule-node", "attribute", "#uname", "operation", "eq", "value", node),
			E("expression", "id", id+"-rule-ready", "attribute", AttrReady, "operation", "eq", "value", "1")))
}

// preferredNode is the node a location constraint of prefers or
// prefersReady names, and its score; "" for other constraints.
func preferredNode(c *Element) (string, int) {
	if c.Name != "rsc_location" {
		return "", 0
	}
	if n := c.Get("node"); n != "" {
		return n, scoreOf(c.Get("score"))
	}
	r := c.Child("rule")
	if r == nil || !strings.Contains(c.Get("id"), "-prefers-") {
		return "", 0
	}
	for _, e := range r.Children {
		if e.Name == "expression" && e.Get("attribute") == "#uname" && e.Get("operation") == "eq" {
			return e.Get("value"), scoreOf(r.Get("score"))
		}
	}
	return "", 0
}

// xmlID makes s a valid XML ID (Pacemaker's ids are): letters, digits,
// '-', '_', '.', not starting with a digit, '-' or '.'.
func xmlID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] >= '0' && b[0] <= '9' || b[0] == '-' || b[0] == '.' {
		return "_" + string(b)
	}
	return string(b)
}

// Build makes the Pacemaker configuration for c.
func Build(c *Config, o Options) *Model {
	b := &builder{o: o, cfg: c, m: &Model{NodeAttrs: map[string]map[string]string{}}}
	b.build()
	return b.m
}

func (b *builder) promotedRole() string {
	if b.o.LegacyRoles {
		return "Master"
	}
	return "Promoted"
}

func (b *builder) rsc(e ...*Element)  { b.m.Resources = append(b.m.Resources, e...) }
func (b *builder) cons(e ...*Element) { b.m.Constraints = append(b.m.Constraints, e...) }

func (b *builder) build() {
	c := b.cfg
	nStorage := strconv.Itoa(len(c.StorageNodes))
	b.m.Nodes = append([]string(nil), c.ClusterNodes...)
	for _, n := range c.StorageNodes {
		b.m.NodeAttrs[n] = map[string]string{"role": "storage"}
	}
	if c.StonithSet {
		b.m.Properties = append(b.m.Properties, [2]string{"stonith-enabled", strconv.FormatBool(c.Stonith)})
	}
	if c.NoQuorum != "" {
		b.m.Properties = append(b.m.Properties, [2]string{"no-quorum-policy", c.NoQuorum})
	}
	storageOnly := func(rsc string) {
		b.cons(onStorage(rsc), notOnOthers(rsc))
	}
	cloneMeta := [][2]string{{"clone-max", nStorage}, {"clone-node-max", "1"}, {"interleave", "true"}}

	// The services each VIP depends on: the VIP runs only where they run,
	// and starts after them.
	var vipDeps []string

	if c.Has("smb") {
		params := [][2]string{{paramCTDBSamba, yesNo(c.SMBManager == SMBByCTDB)}}
		if c.CTDBMode == CTDBLock {
			params = append(params, [2]string{paramCTDBLock, c.CTDBLock})
		}
		if c.CTDBConfDir != "" {
			params = append(params, [2]string{paramCTDBConfDir, c.CTDBConfDir})
		}
		ops := []opSpec{
			{"start", "0s", "90s", ""},
			{"stop", "0s", "100s", ""},
			{"monitor", "10s", "30s", ""},
		}
		// A failed CTDB instance is stopped, not restarted in place: the
		// VIPs (ordered after the whole clone) leave the node at once
		// instead of waiting for ctdbd's restart and recovery there, and
		// come home once the failure expires (HA_FAILURE_TIMEOUT) and
		// CTDB runs there again.
		meta := append([][2]string{}, cloneMeta...)
		meta = append(meta, [2]string{"notify", "true"}, [2]string{"migration-threshold", "1"})
		if c.CTDBMode == CTDBLeader {
			ops = append(ops,
				opSpec{"monitor", "11s", "30s", b.promotedRole()},
				opSpec{"promote", "0s", "30s", ""},
				opSpec{"demote", "0s", "30s", ""})
			meta = append(meta, [2]string{"promotable", "true"}, [2]string{"promoted-max", "1"})
		}
		params = withExtra(params, c.ExtraParams["CTDB"])
		ctdb := b.primitive(idCTDB, "ocf", c.OCFProvider, "CTDB", params, nil, ops)
		b.rsc(clone(idCTDBClone, ctdb, meta))
		storageOnly(idCTDBClone)
		vipDeps = append(vipDeps, idCTDBClone)

		if c.SMBManager == SMBBySystemd || c.SMBManager == SMBByLSB {
			g := E("group", "id", idSamba, "description", Marker)
			for _, s := range c.SMBServices {
				name := strings.TrimSuffix(s, ".service")
				g.Add(b.primitive(xmlID(IDPrefix+name), c.SMBManager, "", name, nil, nil, []opSpec{
					{"start", "0s", "60s", ""},
					{"stop", "0s", "60s", ""},
					{"monitor", "10s", "60s", ""},
				}))
			}
			sambaMeta, after := cloneMeta, order(idCTDBClone, idSambaClone)
			if c.CTDBMode == CTDBLeader {
				// No CTDB node is healthy until an instance is promoted and
				// leads: smbd starts after the promotion, on every node, so
				// the Samba clone is not interleaved.
				sambaMeta = [][2]string{{"clone-max", nStorage}, {"clone-node-max", "1"}, {"interleave", "false"}}
				after.Set("first-action", "promote")
				after.Set("then-action", "start")
			}
			b.rsc(clone(idSambaClone, g, sambaMeta))
			storageOnly(idSambaClone)
			b.cons(colocate(idSambaClone, idCTDBClone), after)
			vipDeps = append(vipDeps, idSambaClone)
		}
	}

	if c.Has("nfs") {
		if c.NFSType != "" {
			fs := b.primitive(idState, "ocf", "heartbeat", "Filesystem", [][2]string{
				{"device", c.NFSVol}, {"directory", c.NFSStateDir()}, {"fstype", c.NFSType},
			}, nil, []opSpec{
				{"start", "0s", "60s", ""},
				{"stop", "0s", "60s", ""},
				{"monitor", "20s", "40s", ""},
			})
			b.rsc(clone(idStateClone, fs, cloneMeta))
			storageOnly(idStateClone)
		}
		// One NFSv4 server scope for every node, the cluster's name: a
		// client reclaims its state on the node that takes its address
		// over only from a server of the scope it had.
		params := withExtra([][2]string{{paramGaneshaConf, c.NFSConf}, {paramGaneshaMnt, c.NFSStateDir()}, {paramScope, c.Name}}, c.ExtraParams["ganesha"])
		g := b.primitive(idGanesha, "ocf", c.OCFProvider, "ganesha", params, nil, []opSpec{
			{"start", "0s", "60s", ""},
			{"stop", "0s", "60s", ""},
			{"monitor", "10s", "30s", ""},
		})
		meta := append([][2]string{}, cloneMeta...)
		meta = append(meta, [2]string{"notify", "true"})
		b.rsc(clone(idGaneshaClone, g, meta))
		storageOnly(idGaneshaClone)
		if c.NFSType != "" {
			b.cons(colocate(idGaneshaClone, idStateClone), order(idStateClone, idGaneshaClone))
		}
		vipDeps = append(vipDeps, idGaneshaClone)
	}

	// Every node that can take a VIP says so once its services run
	// there (AttrReady), so that the VIPs' preferences count only then.
	ready := len(vipDeps) > 0
	if ready {
		p := b.primitive(idReady, "ocf", "pacemaker", "attribute", [][2]string{
			{"name", AttrReady}, {"active_value", "1"}, {"inactive_value", "0"},
		}, nil, []opSpec{
			{"start", "0s", "20s", ""},
			{"stop", "0s", "20s", ""},
			{"monitor", "10s", "20s", ""},
		})
		b.rsc(clone(idReadyClone, p, cloneMeta))
		storageOnly(idReadyClone)
		for _, d := range vipDeps {
			b.cons(colocate(idReadyClone, d), order(d, idReadyClone))
		}
	}

	// Every VIP has a home and a failover order, with or without
	// DETERMINISTIC_FAILOVER: without them a failed node's addresses pile
	// up on one survivor and, when it returns, Pacemaker rebalances by
	// moving addresses that never failed.
	prefs := Preferences(c.StorageNodes, c.Homes())
	for i, v := range c.VIPs {
		id := VIPID(v.Addr)
		params := [][2]string{{paramIP, v.Addr.String()}}
		if v.Prefix > 0 {
			params = append(params, [2]string{paramCidr, strconv.Itoa(v.Prefix)})
		}
		if c.VIPNic != "" {
			params = append(params, [2]string{paramNic, c.VIPNic})
		}
		params = append(params, [2]string{paramTickle, strconv.FormatBool(c.Tickle)})
		if c.Tickle && c.TickleDir != "" {
			params = append(params, [2]string{paramTickleDir, c.TickleDir})
		}
		if c.Tickle && c.TickleSource != "" {
			params = append(params, [2]string{paramTickleSrc, c.TickleSource})
		}
		if c.Tickle && c.TicklePorts != "" {
			params = append(params, [2]string{paramTicklePorts, c.TicklePorts})
		}
		params = withExtra(params, c.ExtraParams["IPaddr3"])
		b.rsc(b.primitive(id, "ocf", c.OCFProvider, "IPaddr3", params,
			[][2]string{{"resource-stickiness", "0"}},
			[]opSpec{
				{"start", "0s", "20s", ""},
				{"stop", "0s", "20s", ""},
				{"monitor", "10s", "20s", ""},
			}))
		storageOnly(id)
		for _, d := range vipDeps {
			b.cons(b.follow(id, d), order(d, id))
		}
		if c.Has("nfs") {
			tparams := [][2]string{{paramIP, v.Addr.String()}}
			if c.Tickle && c.TickleDir != "" {
				// the address's connections, recorded by its IPaddr3: the
				// NFSv4.1+ clients to release when it moves
				tparams = append(tparams, [2]string{paramTickleDir, c.TickleDir})
			}
			t := b.primitive(triggerID(v.Addr), "ocf", c.OCFProvider, "ganesha_trigger", tparams, nil, []opSpec{
				{"start", "0s", "30s", ""},
				{"stop", "0s", "30s", ""},
				{"monitor", "10s", "20s", ""},
				{"notify", "0s", "30s", ""},
			})
			b.rsc(clone(triggerCloneID(v.Addr), t, [][2]string{
				{"clone-max", "1"}, {"clone-node-max", "1"}, {"notify", "true"}, {"interleave", "true"},
			}))
			// The trigger goes where the VIP goes, but starts first: its
			// start puts ganesha there into grace for the clients of the
			// address's previous owner before the address comes up, so that
			// no client reconnects to a ganesha that is not in grace.
			// It talks to ganesha: it starts after ganesha (which the VIP
			// no longer orders it after).
			b.cons(colocate(triggerCloneID(v.Addr), id), order(triggerCloneID(v.Addr), id), order(idGaneshaClone, triggerCloneID(v.Addr)))
		}
		for _, p := range prefs[i] {
			if ready {
				b.cons(prefersReady(id, p.Node, p.Score))
			} else {
				b.cons(prefers(id, p.Node, p.Score))
			}
		}
	}
}

// withExtra adds the admin's extra parameters; one of them overrides
// storhaug's value of the same name.
func withExtra(params, extra [][2]string) [][2]string {
	out := append([][2]string(nil), params...)
next:
	for _, e := range extra {
		for i := range out {
			if out[i][0] == e[0] {
				out[i][1] = e[1]
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
