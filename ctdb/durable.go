package ctdb

import (
	"fmt"
	"strings"
)

// durableNeeds are the share settings without which smbd grants no SMB2/3
// durable handle (smb.conf(5), "durable handles"), with Samba's defaults.
// Without a durable handle a client's open files, and its byte-range locks,
// end with its connection: when the address it uses moves to another node
// gracefully, the old node's smbd closes them, and the client reopens its
// files on the new node without their locks.
var durableNeeds = []struct {
	key, want, def string
}{
	{"durable handles", "yes", "yes"},
	{"kernel oplocks", "no", "no"},
	{"kernel share modes", "no", "no"},
	{"posix locking", "no", "yes"},
}

// DurableHandleBlockers returns, for each share of smb.conf that would get
// no durable handle, the settings that prevent them, e.g.
// `[share]: posix locking = yes (the default)`. A share inherits [global]'s
// values; printer shares and [homes] are not checked.
func DurableHandleBlockers(smbConf []byte) []string {
	global := map[string]string{}
	type share struct {
		name string
		kv   map[string]string
	}
	var shares []*share
	var cur *share
	inGlobal := false
	for _, l := range strings.Split(string(smbConf), "\n") {
		if sec, ok := sectionOf(l); ok {
			inGlobal = sec == "global"
			cur = nil
			if !inGlobal {
				t := strings.TrimSpace(l)
				cur = &share{name: strings.TrimSpace(t[1 : len(t)-1]), kv: map[string]string{}}
				shares = append(shares, cur)
			}
			continue
		}
		k, v, ok := keyValue(l)
		if !ok {
			continue
		}
		switch {
		case inGlobal:
			global[k] = v
		case cur != nil:
			cur.kv[k] = v
		}
	}
	var out []string
	for _, s := range shares {
		if n := normKey(s.name); n == "printers" || n == "homes" || sambaBool(s.kv["printable"]) == "yes" || sambaBool(s.kv["print ok"]) == "yes" {
			continue
		}
		var bad []string
		for _, d := range durableNeeds {
			v, ok := s.kv[d.key]
			from := ""
			if !ok {
				v, ok = global[d.key]
				from = " (in [global])"
			}
			if !ok {
				v, from = d.def, " (the default)"
			}
			if sambaBool(v) != d.want {
				bad = append(bad, fmt.Sprintf("%s = %s%s", d.key, v, from))
			}
		}
		if len(bad) > 0 {
			out = append(out, fmt.Sprintf("[%s]: %s", s.name, strings.Join(bad, ", ")))
		}
	}
	return out
}

// sambaBool is "yes" or "no" for Samba's spellings of a boolean, else v.
func sambaBool(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "1", "on":
		return "yes"
	case "no", "false", "0", "off":
		return "no"
	}
	return v
}
