package ganesha

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// Config is what failover needs to know of ganesha.nfsd's effective
// configuration: the parameters of its NFS_CORE_PARAM and NFSv4 blocks as
// the configuration file (with the files it %includes) sets them. Names
// are kept as written; lookups ignore case, as ganesha does.
type Config struct {
	Path   string
	blocks map[string]map[string]string // lower-case block -> lower-case key -> value
}

// The parameters failover depends on, with the block ganesha reads them from.
const (
	BlockCore     = "NFS_CORE_PARAM"
	BlockNFSv4    = "NFSv4"
	KeyScope      = "Server_Scope"    // NFSv4: the scope EXCHANGE_ID reports
	KeyNLM        = "Enable_NLM"      // NFS_CORE_PARAM, default true
	KeyProtocols  = "Protocols"       // NFS_CORE_PARAM, default 3, 4, 9P
	KeyGrace      = "Grace_Period"    // NFSv4, default 90
	KeyLease      = "Lease_Lifetime"  // NFSv4, default 60
	KeyGraceless  = "Graceless"       // NFSv4, default false
	KeyClustered  = "Clustered"       // NFS_CORE_PARAM, default true
	KeyBackend    = "RecoveryBackend" // NFSv4, default fs
	DefaultGrace  = 90
	DefaultLease  = 60
	maxIncludeDep = 10
)

// ReadConfig reads the configuration file at path and the files it
// %includes. It understands ganesha's syntax (blocks of "key = value;",
// nested blocks, "#" comments, quoted strings) well enough to find
// top-level blocks' parameters; the last value set wins.
func ReadConfig(path string) (*Config, error) {
	c := &Config{Path: path, blocks: map[string]map[string]string{}}
	if err := c.read(path, 0); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseConfig parses configuration text as ReadConfig does; %include
// paths are read relative to dir.
func ParseConfig(text, dir string) (*Config, error) {
	c := &Config{Path: filepath.Join(dir, "(text)"), blocks: map[string]map[string]string{}}
	if err := c.parse(text, dir, c.Path, 0); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) read(path string, depth int) error {
	if depth > maxIncludeDep {
		return fmt.Errorf("%s: %%include nested more than %d deep", path, maxIncludeDep)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return c.parse(string(b), filepath.Dir(path), path, depth)
}

// Value is the value of key in block, unquoted, and whether it is set.
func (c *Config) Value(block, key string) (string, bool) {
	v, ok := c.blocks[strings.ToLower(block)][strings.ToLower(key)]
	return v, ok
}

type token struct {
	s      string
	quoted bool
	line   int
}

func (c *Config) parse(text, dir, name string, depth int) error {
	toks, err := tokenize(text, name)
	if err != nil {
		return err
	}
	var stack []string // open blocks
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case !t.quoted && strings.HasPrefix(t.s, "%"):
			dir2 := strings.ToLower(t.s)
			if i+1 >= len(toks) {
				return fmt.Errorf("%s:%d: %s without a path", name, t.line, t.s)
			}
			arg := toks[i+1]
			i++
			if dir2 != "%include" {
				continue // %url and the like: nothing to check here
			}
			p := arg.s
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			if err := c.read(p, depth+1); err != nil {
				return fmt.Errorf("%s:%d: %%include: %w", name, t.line, err)
			}
		case !t.quoted && t.s == "}":
			if len(stack) == 0 {
				return fmt.Errorf("%s:%d: '}' closes no block", name, t.line)
			}
			stack = stack[:len(stack)-1]
		case !t.quoted && (t.s == ";" || t.s == ","):
		case i+1 < len(toks) && !toks[i+1].quoted && toks[i+1].s == "{":
			stack = append(stack, strings.ToLower(t.s))
			i++
		case i+1 < len(toks) && !toks[i+1].quoted && toks[i+1].s == "=":
			key := strings.ToLower(t.s)
			i += 2
			var vals []string
			for ; i < len(toks) && (toks[i].quoted || toks[i].s != ";" && toks[i].s != "}"); i++ {
				if toks[i].quoted || toks[i].s != "," {
					vals = append(vals, toks[i].s)
				}
			}
			if i < len(toks) && toks[i].s == "}" {
				i-- // a last parameter without ';'
			}
			if len(stack) == 1 { // a top-level block's own parameter
				m := c.blocks[stack[0]]
				if m == nil {
					m = map[string]string{}
					c.blocks[stack[0]] = m
				}
				m[key] = strings.Join(vals, ", ")
			}
		default:
			return fmt.Errorf("%s:%d: unexpected %q", name, t.line, t.s)
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("%s: block %s is not closed", name, stack[len(stack)-1])
	}
	return nil
}

func tokenize(text, name string) ([]token, error) {
	var toks []token
	line := 1
	r := []rune(text)
	for i := 0; i < len(r); {
		ch := r[i]
		switch {
		case ch == '\n':
			line++
			i++
		case unicode.IsSpace(ch):
			i++
		case ch == '#':
			for i < len(r) && r[i] != '\n' {
				i++
			}
		case ch == '{' || ch == '}' || ch == '=' || ch == ';' || ch == ',':
			toks = append(toks, token{s: string(ch), line: line})
			i++
		case ch == '"' || ch == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(r) && r[j] != ch; j++ {
				if r[j] == '\\' && ch == '"' && j+1 < len(r) {
					j++
				}
				if r[j] == '\n' {
					line++
				}
				b.WriteRune(r[j])
			}
			if j >= len(r) {
				return nil, fmt.Errorf("%s:%d: unterminated string", name, line)
			}
			toks = append(toks, token{s: b.String(), quoted: true, line: line})
			i = j + 1
		default:
			j := i
			for j < len(r) && !unicode.IsSpace(r[j]) && !strings.ContainsRune("{}=;,#\"'", r[j]) {
				j++
			}
			toks = append(toks, token{s: string(r[i:j]), line: line})
			i = j
		}
	}
	return toks, nil
}

// ConfigError is a configuration of ganesha.nfsd that failover cannot
// work with; it names the block and parameter to change.
type ConfigError struct {
	Path, Block, Key string
	Msg              string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s: %s { %s }: %s", e.Path, e.Block, e.Key, e.Msg)
}

// HA is how ganesha.nfsd behaves at a failover under this configuration.
type HA struct {
	Scope     string // NFSv4 Server_Scope ("" when unset)
	NLM       bool   // NLM on: grace always lasts Grace_Period
	NFSv3     bool   // Protocols include 3
	Grace     int    // Grace_Period, s
	Lease     int    // Lease_Lifetime, s
	Graceless bool
	EarlyLift bool     // grace ends once every recorded client sent RECLAIM_COMPLETE
	Warnings  []string // what costs clients time but is not wrong
}

// CheckHA checks the configuration for failover between nodes: every node
// must report one NFSv4 Server_Scope (scope; with "" an unset one is only
// a warning: a single server needs none), or Linux clients refuse to reclaim their state on the node that
// takes an address over ("server scope mismatch"); Grace_Period must not be
// shorter than Lease_Lifetime (a client that renewed just before the
// failure may come back only a lease later), and grace must not be turned
// off (Graceless: another client could take a lock before its holder
// reclaims it). What only makes failovers slower is a warning: NLM on in a
// cluster that serves no NFSv3 (grace then never ends early).
func (c *Config) CheckHA(scope string) (*HA, error) {
	h := &HA{NLM: true, NFSv3: true, Grace: DefaultGrace, Lease: DefaultLease}
	h.Scope, _ = c.Value(BlockNFSv4, KeyScope)
	if h.Scope == "" {
		if v, ok := c.Value(BlockCore, KeyScope); ok {
			return h, &ConfigError{c.Path, BlockCore, KeyScope, fmt.Sprintf("is %q here, but ganesha reads %s from the %s block: move it there", v, KeyScope, BlockNFSv4)}
		}
		want := scope
		if want == "" {
			want = "<the cluster's name>"
		}
		msg := fmt.Sprintf("is not set, so every node reports a scope of its own and clients cannot reclaim their locks after an address moves: "+
			"set %s = %q; in the %s block, the same on every node", KeyScope, want, BlockNFSv4)
		if scope != "" {
			return h, &ConfigError{c.Path, BlockNFSv4, KeyScope, msg}
		}
		h.Warnings = append(h.Warnings, (&ConfigError{c.Path, BlockNFSv4, KeyScope, msg}).Error())
	}
	if scope != "" && h.Scope != scope {
		return h, &ConfigError{c.Path, BlockNFSv4, KeyScope, fmt.Sprintf(
			"is %q, but this cluster's nodes use %q: clients cannot reclaim their locks on a node of another scope; set %s = %q; on every node",
			h.Scope, scope, KeyScope, scope)}
	}
	var err error
	if v, ok := c.Value(BlockCore, KeyNLM); ok {
		if h.NLM, err = parseBool(v); err != nil {
			return h, &ConfigError{c.Path, BlockCore, KeyNLM, err.Error()}
		}
	}
	if v, ok := c.Value(BlockCore, KeyProtocols); ok {
		h.NFSv3 = false
		for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			if p == "3" || strings.EqualFold(p, "NFS3") || strings.EqualFold(p, "NFSv3") || strings.EqualFold(p, "V3") {
				h.NFSv3 = true
			}
		}
	}
	for _, p := range []struct {
		key string
		dst *int
	}{{KeyGrace, &h.Grace}, {KeyLease, &h.Lease}} {
		if v, ok := c.Value(BlockNFSv4, p.key); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return h, &ConfigError{c.Path, BlockNFSv4, p.key, fmt.Sprintf("%q is not a number of seconds", v)}
			}
			*p.dst = n
		}
	}
	if v, ok := c.Value(BlockNFSv4, KeyGraceless); ok {
		if h.Graceless, err = parseBool(v); err != nil {
			return h, &ConfigError{c.Path, BlockNFSv4, KeyGraceless, err.Error()}
		}
	}
	if h.Graceless {
		return h, &ConfigError{c.Path, BlockNFSv4, KeyGraceless, "is true: without grace, another client can take a lock " +
			"before the client that held it reclaims it on the node that took its address over; remove it"}
	}
	if h.Grace < h.Lease {
		return h, &ConfigError{c.Path, BlockNFSv4, KeyGrace, fmt.Sprintf(
			"%d s is shorter than %s (%d s): a client that renewed its lease just before a failure may come back only a lease later, "+
				"after grace, and lose its state; set %s to at least %d", h.Grace, KeyLease, h.Lease, KeyGrace, h.Lease)}
	}
	backend, _ := c.Value(BlockNFSv4, KeyBackend)
	clustered := true
	if v, ok := c.Value(BlockCore, KeyClustered); ok {
		if clustered, err = parseBool(v); err != nil {
			return h, &ConfigError{c.Path, BlockCore, KeyClustered, err.Error()}
		}
	}
	if clustered && (backend == "" || strings.EqualFold(backend, "fs")) {
		return h, &ConfigError{c.Path, BlockCore, KeyClustered, "is true (ganesha's default): the fs recovery backend then keeps " +
			"client records in v4recov/node<id>, and a takeover (grace 5:NAME, which reads <RecoveryRoot>/NAME/v4recov) takes " +
			"the node<id> directory for part of every client's name: no client can reclaim after a failover, and grace never ends " +
			"early; set Clustered = false; (storhaug's shared state layout gives each node its own records)"}
	}
	h.EarlyLift = !h.NLM
	if h.NLM && !h.NFSv3 {
		h.Warnings = append(h.Warnings, fmt.Sprintf(
			"%s: %s { %s } is on (ganesha's default) although %s has no NFSv3: grace after a failover then always lasts %s (%d s) "+
				"instead of ending once the clients have reclaimed; set %s = false;",
			c.Path, BlockCore, KeyNLM, KeyProtocols, KeyGrace, h.Grace, KeyNLM))
	}
	return h, nil
}

// ReaperDelay is how often ganesha's reaper looks whether grace can end
// (every client reclaimed): half the lease, at most 10 s. An early lift
// comes up to this long after the last RECLAIM_COMPLETE.
func (h *HA) ReaperDelay() int {
	if h.Lease < 20 {
		return h.Lease / 2
	}
	return 10
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, errors.New(strconv.Quote(v) + " is not a boolean")
}
