package ctdb

import "strings"

// Conf is an ini-style file (ctdb.conf, smb.conf) kept line by line, so
// that changing one key leaves every other line, comment and indentation
// as the admin wrote it.
type Conf struct {
	lines []string
}

// ParseConf reads an ini-style file.
func ParseConf(data []byte) *Conf {
	s := strings.TrimSuffix(string(data), "\n")
	c := &Conf{}
	if s != "" {
		c.lines = strings.Split(s, "\n")
	}
	return c
}

// Bytes renders the file.
func (c *Conf) Bytes() []byte {
	if len(c.lines) == 0 {
		return nil
	}
	return []byte(strings.Join(c.lines, "\n") + "\n")
}

// normKey folds a key as Samba and CTDB compare them: case and runs of
// white space do not matter.
func normKey(k string) string { return strings.ToLower(strings.Join(strings.Fields(k), " ")) }

func sectionOf(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		return normKey(t[1 : len(t)-1]), true
	}
	return "", false
}

func keyValue(line string) (key, value string, ok bool) {
	t := strings.TrimSpace(line)
	if t == "" || t[0] == '#' || t[0] == ';' {
		return "", "", false
	}
	k, v, found := strings.Cut(t, "=")
	if !found {
		return "", "", false
	}
	return normKey(k), strings.TrimSpace(v), true
}

// find returns the line index of section's key (the last one, as the
// parsers let a later line win), or -1, and the index of the section's
// last line (-1 when the section is absent).
func (c *Conf) find(section, key string) (at, end int) {
	section, key = normKey(section), normKey(key)
	at, end = -1, -1
	cur := ""
	for i, l := range c.lines {
		if s, ok := sectionOf(l); ok {
			cur = s
			if cur == section {
				end = i
			}
			continue
		}
		if cur != section {
			continue
		}
		end = i
		if k, _, ok := keyValue(l); ok && k == key {
			at = i
		}
	}
	return at, end
}

// Get returns section's key.
func (c *Conf) Get(section, key string) (string, bool) {
	at, _ := c.find(section, key)
	if at < 0 {
		return "", false
	}
	_, v, _ := keyValue(c.lines[at])
	return v, true
}

// Set sets section's key, in place when it is present, else at the end of
// the section (which is added when absent). It reports whether the file
// changed.
func (c *Conf) Set(section, key, value string) bool {
	at, end := c.find(section, key)
	line := "\t" + key + " = " + value
	if at >= 0 {
		old := c.lines[at]
		indent := old[:len(old)-len(strings.TrimLeft(old, " \t"))]
		line = indent + key + " = " + value
		if old == line {
			return false
		}
		if _, v, _ := keyValue(old); v == value {
			return false
		}
		c.lines[at] = line
		return true
	}
	if end < 0 {
		c.lines = append(c.lines, "["+section+"]", line)
		return true
	}
	// After the section's last key-value line, so that trailing comments
	// and blank lines stay before the next section.
	ins := end
	for ins > 0 {
		if _, isSec := sectionOf(c.lines[ins]); isSec {
			break
		}
		if _, _, ok := keyValue(c.lines[ins]); ok {
			break
		}
		if strings.TrimSpace(c.lines[ins]) != "" && !strings.HasPrefix(strings.TrimSpace(c.lines[ins]), "#") {
			break
		}
		ins--
	}
	c.lines = append(c.lines[:ins+1], append([]string{line}, c.lines[ins+1:]...)...)
	return true
}

// Unset removes every line setting section's key. It reports whether the
// file changed.
func (c *Conf) Unset(section, key string) bool {
	changed := false
	for {
		at, _ := c.find(section, key)
		if at < 0 {
			return changed
		}
		c.lines = append(c.lines[:at], c.lines[at+1:]...)
		changed = true
	}
}

// Setting is one key the caller owns: Value "" with Remove set means the
// key must be absent.
type Setting struct {
	Section, Key, Value string
	Remove              bool
}

// Change records what applying a Setting replaced, so that it can be
// restored: the key's previous value (Had false: it was absent) and the
// value that was written (Wrote false: the key was removed).
type Change struct {
	Section string `json:"section"`
	Key     string `json:"key"`
	Had     bool   `json:"had"`
	Old     string `json:"old,omitempty"`
	Wrote   bool   `json:"wrote"`
	New     string `json:"new,omitempty"`
	// NewSection is set when the section did not exist before.
	NewSection bool `json:"new_section,omitempty"`
	// Line and Raw are where a removed key was, and its line as written,
	// so that restoring puts it back in place.
	Line int    `json:"line,omitempty"`
	Raw  string `json:"raw,omitempty"`
}

// Apply sets the owned keys and returns what changed. Keys already at
// their value are not recorded.
func (c *Conf) Apply(settings []Setting) []Change {
	var ch []Change
	for _, s := range settings {
		old, had := c.Get(s.Section, s.Key)
		if s.Remove {
			if had {
				at, _ := c.find(s.Section, s.Key)
				raw := c.lines[at]
				c.Unset(s.Section, s.Key)
				ch = append(ch, Change{Section: s.Section, Key: s.Key, Had: true, Old: old, Line: at, Raw: raw})
			}
			continue
		}
		if had && old == s.Value {
			continue
		}
		_, end := c.find(s.Section, s.Key)
		c.Set(s.Section, s.Key, s.Value)
		ch = append(ch, Change{Section: s.Section, Key: s.Key, Had: had, Old: old, Wrote: true, New: s.Value, NewSection: end < 0})
	}
	return ch
}

// Restore undoes changes, newest first, leaving alone any key whose value
// is no longer the one that was written (the admin changed it since).
func (c *Conf) Restore(changes []Change) {
	for i := len(changes) - 1; i >= 0; i-- {
		ch := changes[i]
		cur, has := c.Get(ch.Section, ch.Key)
		if has != ch.Wrote || has && cur != ch.New {
			continue
		}
		if ch.Had && !has && ch.Raw != "" && ch.Line <= len(c.lines) && c.sectionAt(ch.Line) == normKey(ch.Section) {
			c.lines = append(c.lines[:ch.Line], append([]string{ch.Raw}, c.lines[ch.Line:]...)...)
		} else if ch.Had {
			c.Set(ch.Section, ch.Key, ch.Old)
		} else {
			c.Unset(ch.Section, ch.Key)
			if ch.NewSection {
				c.dropEmpty(ch.Section)
			}
		}
	}
}

// sectionAt is the section a line inserted at index i would be in.
func (c *Conf) sectionAt(i int) string {
	for j := i - 1; j >= 0; j-- {
		if s, ok := sectionOf(c.lines[j]); ok {
			return s
		}
	}
	return ""
}

// dropEmpty removes section's header when nothing but blank lines follow
// it up to the next section.
func (c *Conf) dropEmpty(section string) {
	section = normKey(section)
	for i, l := range c.lines {
		if s, ok := sectionOf(l); !ok || s != section {
			continue
		}
		j := i + 1
		for j < len(c.lines) && strings.TrimSpace(c.lines[j]) == "" {
			j++
		}
		if j < len(c.lines) {
			if _, next := sectionOf(c.lines[j]); !next {
				return
			}
		}
		c.lines = append(c.lines[:i], c.lines[j:]...)
		return
	}
}

// MergeChanges folds the changes of a later apply into those of an
// earlier one that was never restored (the daemon died without a stop):
// the oldest previous value of each key is kept.
func MergeChanges(earlier, later []Change) []Change {
	out := append([]Change(nil), earlier...)
	idx := map[string]int{}
	for i, c := range out {
		idx[normKey(c.Section)+"\x00"+normKey(c.Key)] = i
	}
	for _, c := range later {
		k := normKey(c.Section) + "\x00" + normKey(c.Key)
		if i, ok := idx[k]; ok {
			out[i].Wrote, out[i].New = c.Wrote, c.New
			continue
		}
		idx[k] = len(out)
		out = append(out, c)
	}
	return out
}
