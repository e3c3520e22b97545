package ctdb

import (
	"fmt"
	"strings"
)

// The markers around the clustering block written into smb.conf's
// [global] section, and the prefix of an admin's line that the block
// overrides (commented out while the block is in place, restored after).
const (
	SambaBegin    = "# storhaug CTDB: begin of the clustering settings (written at start, removed at stop)"
	SambaEnd      = "# storhaug CTDB: end of the clustering settings"
	sambaDisabled = "# storhaug CTDB overrides: "
)

// SambaSettings are the [global] settings a clustered smbd needs.
type SambaSettings struct {
	Socket          string // ctdbd socket
	PassdbBackend   string // passdb backend
	IdmapBackend    string // idmap config * : backend
	PrivateDir      string // private dir; "" leaves it alone
	FileidAlgorithm string // fileid:algorithm; "" leaves it alone (adds vfs fileid when set)
}

func (s SambaSettings) lines(existingVFS string) [][2]string {
	kv := [][2]string{{"clustering", "yes"}}
	if s.Socket != "" {
		kv = append(kv, [2]string{"ctdbd socket", s.Socket})
	}
	if s.PassdbBackend != "" {
		kv = append(kv, [2]string{"passdb backend", s.PassdbBackend})
	}
	if s.IdmapBackend != "" {
		kv = append(kv, [2]string{"idmap config * : backend", s.IdmapBackend})
	}
	if s.PrivateDir != "" {
		kv = append(kv, [2]string{"private dir", s.PrivateDir})
	}
	if s.FileidAlgorithm != "" {
		kv = append(kv, [2]string{"fileid:algorithm", s.FileidAlgorithm})
		vfs := strings.Fields(existingVFS)
		has := false
		for _, v := range vfs {
			has = has || v == "fileid"
		}
		if !has {
			vfs = append(vfs, "fileid")
		}
		kv = append(kv, [2]string{"vfs objects", strings.Join(vfs, " ")})
	}
	return kv
}

// ApplySamba returns smb.conf with the clustering block as the first lines
// of [global] (a [global] section is added when there is none). An admin's
// own [global] line for a key the block sets is commented out with a
// marker, so that RemoveSamba can put it back. Applying again replaces the
// block: the result does not depend on how many times it ran.
func ApplySamba(data []byte, s SambaSettings) []byte {
	base := RemoveSamba(data)
	lines := strings.Split(strings.TrimSuffix(string(base), "\n"), "\n")
	if len(base) == 0 {
		lines = nil
	}
	// Find [global] and the admin's "vfs objects" there.
	g := -1
	vfs := ""
	cur := ""
	for i, l := range lines {
		if sec, ok := sectionOf(l); ok {
			cur = sec
			if sec == "global" && g < 0 {
				g = i
			}
			continue
		}
		if cur == "global" {
			if k, v, ok := keyValue(l); ok && k == "vfs objects" {
				vfs = v
			}
		}
	}
	kv := s.lines(vfs)
	owned := map[string]bool{}
	for _, p := range kv {
		owned[normKey(p[0])] = true
	}
	owned["idmap backend"] = true // the older spelling of idmap config * : backend
	// Comment out the admin's conflicting [global] lines.
	cur = ""
	for i, l := range lines {
		if sec, ok := sectionOf(l); ok {
			cur = sec
			continue
		}
		if cur != "global" {
			continue
		}
		if k, _, ok := keyValue(l); ok && owned[k] {
			lines[i] = sambaDisabled + l
		}
	}
	block := []string{"\t" + SambaBegin}
	for _, p := range kv {
		block = append(block, fmt.Sprintf("\t%s = %s", p[0], p[1]))
	}
	block = append(block, "\t"+SambaEnd)
	if g < 0 {
		lines = append([]string{"[global]"}, append(block, lines...)...)
	} else {
		lines = append(lines[:g+1], append(block, lines[g+1:]...)...)
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// RemoveSamba returns smb.conf without the clustering block, with the
// admin's lines it had overridden restored.
func RemoveSamba(data []byte) []byte {
	if len(data) == 0 {
		return data
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	out := lines[:0:0]
	in := false
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case t == SambaBegin:
			in = true
			continue
		case t == SambaEnd:
			in = false
			continue
		case in:
			continue
		case strings.HasPrefix(l, sambaDisabled):
			l = strings.TrimPrefix(l, sambaDisabled)
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// HasSamba reports whether smb.conf carries the clustering block.
func HasSamba(data []byte) bool { return strings.Contains(string(data), SambaBegin) }
