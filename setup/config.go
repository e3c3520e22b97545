// Package setup is storhaug's cluster wiring: it reads storhaug.conf (as
// data, never through a shell), builds the Pacemaker configuration it
// describes (resources, clones, constraints, node attributes, all marked as
// storhaug's by an id prefix), and applies it with Pacemaker's own tools in
// one epoch-checked CIB patch.
package setup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Default locations of the configuration.
const (
	DefaultConfigFile = "/etc/sysconfig/storhaug.conf"
	dropInDirName     = "storhaug.d"
)

// DefaultConfigDir returns the drop-in directory for the configuration file
// file: storhaug.d beside it.
func DefaultConfigDir(file string) string {
	return filepath.Join(filepath.Dir(file), dropInDirName)
}

// Error is a configuration error; it names where the offending key was set.
type Error struct {
	File string
	Line int // 0: the key is missing or the error concerns the whole file
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Errors is the list of every problem found in a configuration.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Setting is one KEY=value assignment and where it was made.
type Setting struct {
	Key, Value string
	File       string
	Line       int
}

// Parse reads KEY=value assignments from data (the contents of file, which
// is only used in messages). The syntax is the subset of shell assignment
// that configuration files use: optional "export ", unquoted, 'single' or
// "double" quoted values (adjacent parts concatenate), # comments. Anything
// a shell would evaluate ($, backquotes, ;, &, |, redirections, (...)) is
// refused rather than executed or taken literally.
func Parse(file string, data []byte) ([]Setting, error) {
	var out []Setting
	var errs Errors
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		s, err := parseLine(line)
		if err != nil {
			err.File, err.Line = file, n
			errs = append(errs, err)
			continue
		}
		if s != nil {
			s.File, s.Line = file, n
			out = append(out, *s)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &Error{File: file, Line: n + 1, Msg: err.Error()})
	}
	if len(errs) > 0 {
		return out, errs
	}
	return out, nil
}

func isKeyStart(c byte) bool { return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isKeyChar(c byte) bool  { return isKeyStart(c) || c >= '0' && c <= '9' }

func parseLine(line string) (*Setting, *Error) {
	if !utf8.ValidString(line) {
		return nil, &Error{Msg: "not valid UTF-8"}
	}
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' {
		return nil, nil
	}
	if rest, ok := strings.CutPrefix(s, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		s = strings.TrimLeft(rest, " \t")
	}
	i := 0
	if i < len(s) && isKeyStart(s[i]) {
		for i < len(s) && isKeyChar(s[i]) {
			i++
		}
	}
	key := s[:i]
	if key == "" {
		return nil, &Error{Msg: fmt.Sprintf("expected KEY=value, found %q", clip(s))}
	}
	if i == len(s) || s[i] != '=' {
		rest := strings.TrimLeft(s[i:], " \t")
		if strings.HasPrefix(rest, "=") {
			return nil, &Error{Key: key, Msg: "no spaces allowed around '=' (KEY=value)"}
		}
		return nil, &Error{Msg: fmt.Sprintf("expected KEY=value, found %q", clip(s))}
	}
	val, err := parseValue(s[i+1:])
	if err != nil {
		err.Key = key
		return nil, err
	}
	return &Setting{Key: key, Value: val}, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// parseValue reads one shell word and what may follow it (blanks, a comment).
func parseValue(s string) (string, *Error) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			rest := strings.TrimLeft(s[i:], " \t")
			if rest == "" || rest[0] == '#' {
				return b.String(), nil
			}
			return "", &Error{Msg: fmt.Sprintf("unexpected %q after the value (quote values that contain blanks)", clip(rest))}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", &Error{Msg: "unterminated ' quote (values must fit on one line)"}
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case c == '"':
			i++
			closed := false
			for i < len(s) {
				d := s[i]
				if d == '"' {
					closed = true
					i++
					break
				}
				if d == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if d == '$' || d == '`' {
					return "", &Error{Msg: fmt.Sprintf("%q would be expanded by a shell; storhaug reads the file as data (write the value out, or use single quotes)", string(d))}
				}
				b.WriteByte(d)
				i++
			}
			if !closed {
				return "", &Error{Msg: "unterminated \" quote (values must fit on one line)"}
			}
		case c == '\\':
			if i+1 >= len(s) {
				return "", &Error{Msg: "line continuation (\\ at the end) is not supported"}
			}
			r, size := utf8.DecodeRuneInString(s[i+1:])
			b.WriteRune(r)
			i += 1 + size
		case strings.IndexByte("$`;&|<>()", c) >= 0:
			return "", &Error{Msg: fmt.Sprintf("%q is shell syntax; storhaug reads the file as data and does not run it (quote the value)", string(c))}
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// Load reads file and then every *.conf in dir in lexical order; a later
// assignment overrides an earlier one. A missing dir is not an error.
func Load(file, dir string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &Error{File: file, Msg: readErr(err)}
	}
	all, perr := Parse(file, data)
	var errs Errors
	if perr != nil {
		errs = append(errs, perr.(Errors)...)
	}
	if dir != "" {
		matches, err := filepath.Glob(filepath.Join(dir, "*.conf"))
		if err != nil {
			return nil, &Error{File: dir, Msg: err.Error()}
		}
		sort.Strings(matches)
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.IsDir() {
				continue
			}
			d, err := os.ReadFile(m)
			if err != nil {
				errs = append(errs, &Error{File: m, Msg: readErr(err)})
				continue
			}
			s, perr := Parse(m, d)
			if perr != nil {
				errs = append(errs, perr.(Errors)...)
			}
			all = append(all, s...)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	cfg, err := FromSettings(file, all)
	if cfg != nil {
		cfg.File, cfg.Dir = file, dir
	}
	return cfg, err
}

func readErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// SMB managers: how smbd/nmbd are run.
const (
	SMBByCTDB    = "ctdb"    // CTDB's own event scripts (ctdb_manages_samba=yes)
	SMBBySystemd = "systemd" // systemd:<service> resources, grouped and cloned
	SMBByLSB     = "lsb"     // lsb:<init script> resources, grouped and cloned
	SMBNone      = "none"    // started outside Pacemaker
)

// CTDB modes.
const (
	CTDBLeader = "leader" // promotable clone: Pacemaker chooses the CTDB leader, no cluster lock needed
	CTDBLock   = "lock"   // plain clone; CTDB elects its leader with a cluster lock file
)

// VIP is one virtual address.
type VIP struct {
	Addr   netip.Addr
	Prefix int // 0: not given (the agent finds it from the routes, or HA_VIP_CIDR_NETMASK)
}

func (v VIP) String() string {
	if v.Prefix > 0 {
		return fmt.Sprintf("%s/%d", v.Addr, v.Prefix)
	}
	return v.Addr.String()
}

// Config is a validated storhaug configuration.
type Config struct {
	File, Dir string // where it was loaded from

	Name                  string   // HA_NAME: the Pacemaker cluster's name
	ClusterNodes          []string // HA_CLUSTER_NODES
	StorageNodes          []string // STORAGE_NODES (defaults to ClusterNodes)
	VIPs                  []VIP    // HA_VIPS
	VIPNodes              []string // HA_VIP_NODES: home node of each VIP (optional)
	DeterministicFailover bool     // DETERMINISTIC_FAILOVER (no effect: every VIP has a home and a failover order)
	Services              []string // HA_SERVICES: "nfs", "smb"

	MntDir    string // HA_MNT_DIR
	SMBMntDir string // HA_SMB_MNT_DIR (below MntDir)
	NFSMntDir string // HA_NFS_MNT_DIR (below MntDir): NFS-Ganesha's shared state
	NFSType   string // HA_NFS_TYPE: file system of the shared state volume ("" or "none": already mounted)
	NFSVol    string // HA_NFS_VOL: its device
	NFSConf   string // HA_NFS_CONF
	NFSExpDir string // HA_NFS_EXPDIR

	VIPNic       string // HA_VIP_NIC
	VIPCidr      int    // HA_VIP_CIDR_NETMASK (0: unset)
	Tickle       bool   // HA_VIP_TICKLE
	TickleDir    string // HA_VIP_TICKLE_DIR
	CTDBMode     string // HA_CTDB_MODE
	CTDBLock     string // HA_CTDB_LOCK
	CTDBConfDir  string // HA_CTDB_CONFIG_DIR
	SMBManager   string // HA_SMB_MANAGER
	SMBServices  []string
	TickleSource string // HA_VIP_TICKLE_SOURCE
	TicklePorts  string // HA_VIP_TICKLE_PORTS
	// Extra agent parameters: agent type -> name=value pairs, and the key
	// that gave them.
	ExtraParams    map[string][][2]string
	FailureTimeout string // HA_FAILURE_TIMEOUT ("" never)
	StonithSet     bool   // HA_STONITH_ENABLED given
	Stonith        bool
	NoQuorum       string // HA_NO_QUORUM_POLICY
	OCFProvider    string // HA_OCF_PROVIDER (storhaug)
	Warnings       []string
	Settings       map[string]Setting // the effective assignment of each key
	settingOrder   []string
}

// Has reports whether service ("nfs" or "smb") is configured.
func (c *Config) Has(service string) bool {
	for _, s := range c.Services {
		if s == service {
			return true
		}
	}
	return false
}

// NFSStateDir is where NFS-Ganesha's shared state lives.
func (c *Config) NFSStateDir() string { return filepath.Join(c.MntDir, c.NFSMntDir) }

// VIPHome returns the home node of VIP i: HA_VIP_NODES[i] if given, else the
// storage nodes in turn.
func (c *Config) VIPHome(i int) string {
	if len(c.VIPNodes) > 0 {
		return c.VIPNodes[i]
	}
	return c.StorageNodes[i%len(c.StorageNodes)]
}

type keyInfo struct {
	def  string
	help string
	// ignored keys are accepted for compatibility and have no effect
	ignored string
}

// knownKeys are every key storhaug.conf may set, with defaults (built on
// first use: agents linked into the same binary never pay for it).
var knownKeys = sync.OnceValue(func() map[string]keyInfo {
	return map[string]keyInfo{
		"HA_NAME":                {def: "storhaug", help: "name of the Pacemaker cluster (corosync's cluster_name)"},
		"HA_CLUSTER_NODES":       {help: "comma-separated node names of the cluster"},
		"STORAGE_NODES":          {help: "comma-separated subset of HA_CLUSTER_NODES that serve storage (default: all)"},
		"HA_VIPS":                {help: "blank-separated virtual addresses, IPv4 or IPv6, optionally ADDR/PREFIX"},
		"HA_VIP_NODES":           {help: "comma-separated home node of each VIP, in HA_VIPS order"},
		"DETERMINISTIC_FAILOVER": {def: "false", help: "accepted for compatibility: every VIP now has a home node (HA_VIP_NODES) and a fixed failover order that spreads a failed node's VIPs"},
		"HA_SERVICES":            {def: "nfs smb", help: "blank-separated services: nfs, smb"},
		"HA_MNT_DIR":             {def: "/run/storhaug", help: "mount point of the shared volumes"},
		"HA_SMB_MNT_DIR":         {def: "lock", help: "CTDB's shared directory, below HA_MNT_DIR"},
		"HA_NFS_MNT_DIR":         {def: "state", help: "NFS-Ganesha's shared state, below HA_MNT_DIR"},
		"HA_NFS_TYPE":            {help: "file system type of the shared NFS state volume (empty: mounted outside Pacemaker)"},
		"HA_NFS_VOL":             {help: "device of the shared NFS state volume"},
		"HA_NFS_CONF":            {def: "/etc/ganesha/ganesha.conf", help: "NFS-Ganesha configuration file"},
		"HA_NFS_EXPDIR":          {help: "NFS-Ganesha exports directory (default: exports beside HA_NFS_CONF; accepted for compatibility, not used by setup)"},
		"HA_VIP_NIC":             {help: "interface for the VIPs (default: the one whose route matches)"},
		"HA_VIP_CIDR_NETMASK":    {help: "prefix length for IPv4 VIPs given without /PREFIX (IPv6 ones take theirs from the routes)"},
		"HA_VIP_TICKLE":          {def: "true", help: "send tickle ACKs so clients of a moved VIP reconnect at once"},
		"HA_VIP_TICKLE_DIR":      {help: "shared directory for the VIPs' connection lists (default: HA_MNT_DIR/tickle)"},
		"HA_VIP_TICKLE_SOURCE":   {help: "where connections to tickle are found: auto, conntrack, sockdiag (default: the agent's)"},
		"HA_VIP_TICKLE_PORTS":    {help: "only tickle connections to these ports, e.g. 445,2049 (default: all)"},
		"HA_VIP_PARAMS":          {help: "more IPaddr3 parameters for every VIP, blank-separated name=value"},
		"HA_CTDB_PARAMS":         {help: "more CTDB parameters, blank-separated name=value"},
		"HA_GANESHA_PARAMS":      {help: "more ganesha parameters, blank-separated name=value"},
		"HA_CTDB_MODE":           {def: CTDBLeader, help: "leader (promotable clone, Pacemaker picks CTDB's leader) or lock (plain clone, cluster lock)"},
		"HA_CTDB_LOCK":           {help: "CTDB cluster lock file in lock mode (default: HA_MNT_DIR/HA_SMB_MNT_DIR/ctdb.lock)"},
		"HA_CTDB_CONFIG_DIR":     {help: "CTDB configuration directory (default: the agent's, /etc/ctdb)"},
		"HA_SMB_MANAGER":         {def: SMBByCTDB, help: "who runs smbd/nmbd: ctdb (CTDB event scripts), systemd, lsb, none"},
		"HA_SMB_SERVICES":        {def: "smbd nmbd", help: "systemd units or init scripts for HA_SMB_MANAGER=systemd|lsb"},
		"HA_FAILURE_TIMEOUT":     {def: "60s", help: "forget a resource's failures after this long, so that a node is tried again without storhaug cleanup (0: never)"},
		"HA_STONITH_ENABLED":     {help: "set Pacemaker's stonith-enabled (unset: leave it alone)"},
		"HA_NO_QUORUM_POLICY":    {help: "set Pacemaker's no-quorum-policy (unset: leave it alone)"},
		"HA_OCF_PROVIDER":        {def: "storhaug", help: "OCF provider of the storhaug agents"},
		"HA_PASSWORD":            {ignored: "storhaug does not use pcsd; the cluster is formed with corosync.conf"},
		"HA_SERVER":              {ignored: "storhaug needs no management server; run it on any cluster node"},
	}
})

// extraParamKeys map the keys of extra agent parameters to the agents.
var extraParamKeys = map[string]string{"HA_VIP_PARAMS": "IPaddr3", "HA_CTDB_PARAMS": "CTDB", "HA_GANESHA_PARAMS": "ganesha"}

// CheckParams reports extra agent parameters (HA_*_PARAMS) that known says
// the agent does not have, naming where they were set.
func (c *Config) CheckParams(known func(agent, param string) bool) error {
	var errs Errors
	keys := make([]string, 0, len(extraParamKeys))
	for k := range extraParamKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		agent := extraParamKeys[key]
		for _, p := range c.ExtraParams[agent] {
			if !known(agent, p[0]) {
				s := c.Settings[key]
				errs = append(errs, &Error{File: s.File, Line: s.Line, Key: key, Msg: fmt.Sprintf("the %s agent has no parameter %s (storhaug meta-data %s lists them)", agent, p[0], agent)})
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Keys returns every known key, sorted, with a one-line description.
func Keys() [][2]string {
	var out [][2]string
	for k, ki := range knownKeys() {
		h := ki.help
		if ki.ignored != "" {
			h = "ignored: " + ki.ignored
		}
		out = append(out, [2]string{k, h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// FromSettings validates assignments (in order; later ones win) into a
// Config. file names the main configuration in messages about missing keys.
func FromSettings(file string, settings []Setting) (*Config, error) {
	c := &Config{Settings: map[string]Setting{}}
	var errs Errors
	for _, s := range settings {
		ki, ok := knownKeys()[s.Key]
		if !ok {
			errs = append(errs, &Error{File: s.File, Line: s.Line, Key: s.Key, Msg: "unknown key" + suggest(s.Key)})
			continue
		}
		if ki.ignored != "" {
			c.Warnings = append(c.Warnings, (&Error{File: s.File, Line: s.Line, Key: s.Key, Msg: "ignored: " + ki.ignored}).Error())
		}
		if _, seen := c.Settings[s.Key]; !seen {
			c.settingOrder = append(c.settingOrder, s.Key)
		}
		c.Settings[s.Key] = s
	}
	v := validator{c: c, file: file}
	v.run()
	errs = append(errs, v.errs...)
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func suggest(key string) string {
	best, bestD := "", 3
	for k := range knownKeys() {
		if d := editDistance(strings.ToUpper(key), k); d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	if best != "" {
		return " (did you mean " + best + "?)"
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

type validator struct {
	c    *Config
	file string
	errs Errors
}

// get returns the value of key (or its default) and whether it was set.
func (v *validator) get(key string) (string, bool) {
	if s, ok := v.c.Settings[key]; ok {
		return s.Value, true
	}
	return knownKeys()[key].def, false
}

func (v *validator) fail(key, format string, args ...any) {
	e := &Error{File: v.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if s, ok := v.c.Settings[key]; ok {
		e.File, e.Line = s.File, s.Line
	}
	v.errs = append(v.errs, e)
}

func splitList(s string, comma bool) []string {
	f := func(r rune) bool { return r == ' ' || r == '\t' || comma && r == ',' }
	return strings.FieldsFunc(s, f)
}

func validNodeName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return n[0] != '-' && n[0] != '.'
}

func (v *validator) nodeList(key string, comma bool) []string {
	val, _ := v.get(key)
	var out []string
	seen := map[string]bool{}
	for _, n := range splitList(val, comma) {
		if !validNodeName(n) {
			v.fail(key, "%q is not a valid node name (letters, digits, '-', '.', '_')", n)
			continue
		}
		if seen[n] && key != "HA_VIP_NODES" {
			v.fail(key, "node %s is listed twice", n)
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

func (v *validator) boolean(key string) bool {
	val, _ := v.get(key)
	switch strings.ToLower(val) {
	case "true", "yes", "on", "1":
		return true
	case "false", "no", "off", "0":
		return false
	}
	v.fail(key, "%q is not a boolean (true/false, yes/no)", val)
	return false
}

func (v *validator) absPath(key string, allowEmpty bool) string {
	val, _ := v.get(key)
	if val == "" {
		if !allowEmpty {
			v.fail(key, "must not be empty")
		}
		return ""
	}
	if !filepath.IsAbs(val) {
		v.fail(key, "%q is not an absolute path", val)
	}
	return filepath.Clean(val)
}

func (v *validator) relPath(key string) string {
	val, _ := v.get(key)
	if val == "" || filepath.IsAbs(val) || strings.HasPrefix(filepath.Clean(val), "..") {
		v.fail(key, "%q must be a directory name below HA_MNT_DIR", val)
		return val
	}
	return filepath.Clean(val)
}

func (v *validator) oneOf(key string, allowed ...string) string {
	val, _ := v.get(key)
	for _, a := range allowed {
		if val == a {
			return val
		}
	}
	v.fail(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
	return allowed[0]
}

func (v *validator) run() {
	c := v.c
	c.Name, _ = v.get("HA_NAME")
	if c.Name == "" || !validNodeName(c.Name) {
		v.fail("HA_NAME", "%q is not a valid cluster name (letters, digits, '-', '.', '_')", c.Name)
	}

	c.ClusterNodes = v.nodeList("HA_CLUSTER_NODES", true)
	if _, set := v.get("HA_CLUSTER_NODES"); !set {
		v.fail("HA_CLUSTER_NODES", "required: the comma-separated names of the cluster's nodes")
	} else if len(c.ClusterNodes) < 2 {
		v.fail("HA_CLUSTER_NODES", "high availability needs at least 2 nodes, found %d", len(c.ClusterNodes))
	}
	member := map[string]bool{}
	for _, n := range c.ClusterNodes {
		member[n] = true
	}
	if _, set := v.get("STORAGE_NODES"); set {
		c.StorageNodes = v.nodeList("STORAGE_NODES", true)
		for _, n := range c.StorageNodes {
			if !member[n] {
				v.fail("STORAGE_NODES", "node %s is not in HA_CLUSTER_NODES", n)
			}
		}
		if len(c.StorageNodes) == 0 {
			v.fail("STORAGE_NODES", "empty: list at least one storage node, or remove the key to use every node")
		}
	} else {
		c.StorageNodes = append([]string(nil), c.ClusterNodes...)
	}
	storage := map[string]bool{}
	for _, n := range c.StorageNodes {
		storage[n] = true
	}

	// HA_VIP_CIDR_NETMASK first: VIPs given without a prefix use it.
	if val, set := v.get("HA_VIP_CIDR_NETMASK"); set && val != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(val, "/"))
		if err != nil || n < 1 || n > 32 {
			v.fail("HA_VIP_CIDR_NETMASK", "%q is not an IPv4 prefix length (1-32)", val)
		} else {
			c.VIPCidr = n
		}
	}
	c.VIPNic, _ = v.get("HA_VIP_NIC")
	if c.VIPNic != "" && (len(c.VIPNic) > 15 || strings.ContainsAny(c.VIPNic, " /:")) {
		v.fail("HA_VIP_NIC", "%q is not an interface name", c.VIPNic)
	}
	vips, vipsSet := v.get("HA_VIPS")
	seenVIP := map[netip.Addr]bool{}
	for _, w := range splitList(vips, true) {
		vip, err := parseVIP(w, c.VIPCidr, c.VIPNic != "")
		if err != nil {
			v.fail("HA_VIPS", "%s", err)
			continue
		}
		if seenVIP[vip.Addr] {
			v.fail("HA_VIPS", "%s is listed twice", vip.Addr)
			continue
		}
		seenVIP[vip.Addr] = true
		c.VIPs = append(c.VIPs, vip)
	}
	if !vipsSet {
		v.fail("HA_VIPS", "required: the virtual addresses clients use, e.g. HA_VIPS=\"198.51.100.11 198.51.100.12\"")
	} else if len(c.VIPs) == 0 && vips != "" {
		// every entry was reported above
	} else if len(c.VIPs) == 0 {
		v.fail("HA_VIPS", "empty: at least one virtual address is needed")
	}

	c.DeterministicFailover = v.boolean("DETERMINISTIC_FAILOVER")
	if _, set := v.get("HA_VIP_NODES"); set {
		c.VIPNodes = v.nodeList("HA_VIP_NODES", true)
		for _, n := range c.VIPNodes {
			if !storage[n] {
				if member[n] {
					v.fail("HA_VIP_NODES", "node %s is not a storage node (STORAGE_NODES)", n)
				} else {
					v.fail("HA_VIP_NODES", "node %s is not in HA_CLUSTER_NODES", n)
				}
			}
		}
		if len(c.VIPNodes) != len(c.VIPs) && len(c.VIPs) > 0 {
			v.fail("HA_VIP_NODES", "%d home nodes for %d VIPs: give exactly one home node per address in HA_VIPS", len(c.VIPNodes), len(c.VIPs))
		}
	}

	svcs, _ := v.get("HA_SERVICES")
	seenSvc := map[string]bool{}
	for _, s := range splitList(svcs, true) {
		s = strings.ToLower(s)
		if s != "nfs" && s != "smb" {
			v.fail("HA_SERVICES", "unknown service %q (nfs, smb)", s)
			continue
		}
		if !seenSvc[s] {
			c.Services = append(c.Services, s)
		}
		seenSvc[s] = true
	}
	if len(c.Services) == 0 && len(splitList(svcs, true)) == 0 {
		v.fail("HA_SERVICES", "empty: name at least one of nfs, smb")
	}

	c.MntDir = v.absPath("HA_MNT_DIR", false)
	c.SMBMntDir = v.relPath("HA_SMB_MNT_DIR")
	c.NFSMntDir = v.relPath("HA_NFS_MNT_DIR")
	c.NFSType, _ = v.get("HA_NFS_TYPE")
	if c.NFSType == "none" {
		c.NFSType = ""
	}
	if c.NFSType != "" && strings.ContainsAny(c.NFSType, " \t,/") {
		v.fail("HA_NFS_TYPE", "%q is not a file system type", c.NFSType)
	}
	c.NFSVol, _ = v.get("HA_NFS_VOL")
	if c.NFSType != "" && c.NFSVol == "" && c.Has("nfs") {
		v.fail("HA_NFS_VOL", "required when HA_NFS_TYPE is set: the device of the shared state volume")
	}
	c.NFSConf = v.absPath("HA_NFS_CONF", false)
	c.NFSExpDir = v.absPath("HA_NFS_EXPDIR", true)
	if c.NFSExpDir == "" && c.NFSConf != "" {
		c.NFSExpDir = filepath.Join(filepath.Dir(c.NFSConf), "exports")
	}

	c.Tickle = v.boolean("HA_VIP_TICKLE")
	c.TickleDir = v.absPath("HA_VIP_TICKLE_DIR", true)
	if c.TickleDir == "" && c.MntDir != "" {
		c.TickleDir = filepath.Join(c.MntDir, "tickle")
	}
	if val, set := v.get("HA_VIP_TICKLE_SOURCE"); set && val != "" {
		c.TickleSource = v.oneOf("HA_VIP_TICKLE_SOURCE", "auto", "conntrack", "sockdiag")
	}
	c.TicklePorts, _ = v.get("HA_VIP_TICKLE_PORTS")
	for _, p := range strings.Split(c.TicklePorts, ",") {
		if c.TicklePorts == "" {
			break
		}
		lo, hi, isRange := strings.Cut(strings.TrimSpace(p), "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
			v.fail("HA_VIP_TICKLE_PORTS", "%q is not a port or range of ports (1-65535)", p)
			break
		}
	}
	c.ExtraParams = map[string][][2]string{}
	for key, agent := range extraParamKeys {
		val, _ := v.get(key)
		seen := map[string]bool{}
		for _, w := range splitList(val, false) {
			name, value, ok := strings.Cut(w, "=")
			if !ok || name == "" || strings.IndexFunc(name, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
			}) >= 0 {
				v.fail(key, "%q is not name=value", w)
				continue
			}
			if seen[name] {
				v.fail(key, "parameter %s is given twice", name)
				continue
			}
			seen[name] = true
			c.ExtraParams[agent] = append(c.ExtraParams[agent], [2]string{name, value})
		}
	}
	c.CTDBMode = v.oneOf("HA_CTDB_MODE", CTDBLeader, CTDBLock)
	c.CTDBLock = v.absPath("HA_CTDB_LOCK", true)
	if c.CTDBLock == "" && c.CTDBMode == CTDBLock && c.MntDir != "" {
		c.CTDBLock = filepath.Join(c.MntDir, c.SMBMntDir, "ctdb.lock")
	}
	c.CTDBConfDir = v.absPath("HA_CTDB_CONFIG_DIR", true)
	c.SMBManager = v.oneOf("HA_SMB_MANAGER", SMBByCTDB, SMBBySystemd, SMBByLSB, SMBNone)
	svc, _ := v.get("HA_SMB_SERVICES")
	for _, s := range splitList(svc, true) {
		if !validNodeName(s) && !strings.HasSuffix(s, ".service") {
			v.fail("HA_SMB_SERVICES", "%q is not a service name", s)
			continue
		}
		c.SMBServices = append(c.SMBServices, s)
	}
	if (c.SMBManager == SMBBySystemd || c.SMBManager == SMBByLSB) && len(c.SMBServices) == 0 {
		v.fail("HA_SMB_SERVICES", "empty: name the smbd (and nmbd) services for HA_SMB_MANAGER=%s", c.SMBManager)
	}
	ft, _ := v.get("HA_FAILURE_TIMEOUT")
	if d, ok := pcmkDuration(ft); !ok {
		v.fail("HA_FAILURE_TIMEOUT", "%q is not a duration (such as 60s, 5min, 0)", ft)
	} else if d > 0 {
		c.FailureTimeout = ft
	}
	if _, set := v.get("HA_STONITH_ENABLED"); set {
		c.StonithSet = true
		c.Stonith = v.boolean("HA_STONITH_ENABLED")
	}
	if val, set := v.get("HA_NO_QUORUM_POLICY"); set && val != "" {
		c.NoQuorum = v.oneOf("HA_NO_QUORUM_POLICY", "stop", "freeze", "ignore", "demote", "suicide")
	}
	c.OCFProvider, _ = v.get("HA_OCF_PROVIDER")
	if !validNodeName(c.OCFProvider) {
		v.fail("HA_OCF_PROVIDER", "%q is not an OCF provider name", c.OCFProvider)
	}
}

// pcmkDuration parses a duration as Pacemaker writes them (a number and an
// optional unit: ms, s, m/min, h); it returns the seconds.
func pcmkDuration(s string) (float64, bool) {
	num := strings.TrimRightFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
	unit := s[len(num):]
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, false
	}
	f := map[string]float64{"": 1, "s": 1, "sec": 1, "ms": 0.001, "msec": 0.001, "m": 60, "min": 60, "h": 3600, "hr": 3600}[unit]
	if f == 0 {
		return 0, false
	}
	return float64(n) * f, true
}

func parseVIP(w string, defPrefix int, haveNic bool) (VIP, error) {
	var vip VIP
	addrPart, prefPart, hasPrefix := strings.Cut(w, "/")
	a, err := netip.ParseAddr(addrPart)
	if err != nil || a.Zone() != "" {
		return vip, fmt.Errorf("%q is not an IP address", w)
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsInterfaceLocalMulticast():
		return vip, fmt.Errorf("%s cannot be a virtual address (unspecified, loopback or multicast)", a)
	case a.IsLinkLocalUnicast() && !haveNic:
		return vip, fmt.Errorf("%s is link-local: set HA_VIP_NIC too", a)
	case a.Is4() && a.As4()[3] == 255 && !hasPrefix:
		// may be fine with a larger prefix; only the explicit case is checked below
	}
	vip.Addr = a
	bits := 32
	if a.Is6() {
		bits = 128
	}
	if hasPrefix {
		n, err := strconv.Atoi(prefPart)
		if err != nil || n < 1 || n > bits {
			return vip, fmt.Errorf("%q: prefix length must be 1-%d", w, bits)
		}
		vip.Prefix = n
	} else if defPrefix > 0 && a.Is4() {
		vip.Prefix = defPrefix
	}
	if vip.Prefix > 0 && vip.Prefix < bits-1 && a.Is4() {
		p := netip.PrefixFrom(a, vip.Prefix).Masked()
		if p.Addr() == a {
			return vip, fmt.Errorf("%s is the network address of %s", a, p)
		}
		last := p.Addr().As4()
		hostBits := 32 - vip.Prefix
		v := uint32(last[0])<<24 | uint32(last[1])<<16 | uint32(last[2])<<8 | uint32(last[3])
		v |= (1 << hostBits) - 1
		if a == netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) {
			return vip, fmt.Errorf("%s is the broadcast address of %s", a, p)
		}
	}
	return vip, nil
}

// Format renders a value so that Parse reads it back unchanged.
func Format(key, value string) string {
	return key + "=" + quote(value)
}

func quote(v string) string {
	if !strings.ContainsAny(v, "\"\\$`") {
		return "\"" + v + "\""
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
