package ctdb

import "strings"

// ShellVars is a file of shell variable assignments (script.options), kept
// line by line like Conf. Section is unused.
type ShellVars struct{ lines []string }

// ParseShellVars reads KEY=value lines.
func ParseShellVars(data []byte) *ShellVars {
	s := strings.TrimSuffix(string(data), "\n")
	v := &ShellVars{}
	if s != "" {
		v.lines = strings.Split(s, "\n")
	}
	return v
}

// Bytes renders the file.
func (v *ShellVars) Bytes() []byte {
	if len(v.lines) == 0 {
		return nil
	}
	return []byte(strings.Join(v.lines, "\n") + "\n")
}

func (v *ShellVars) find(key string) int {
	at := -1
	for i, l := range v.lines {
		t := strings.TrimSpace(l)
		if k, _, ok := strings.Cut(t, "="); ok && strings.TrimSpace(k) == key && !strings.HasPrefix(t, "#") {
			at = i
		}
	}
	return at
}

// Get returns a variable's value, unquoted.
func (v *ShellVars) Get(key string) (string, bool) {
	at := v.find(key)
	if at < 0 {
		return "", false
	}
	_, val, _ := strings.Cut(strings.TrimSpace(v.lines[at]), "=")
	return strings.Trim(val, `"'`), true
}

func quote(s string) string {
	if strings.ContainsAny(s, " \t\"'$`\\") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
	}
	return s
}

// Set assigns a variable in place, or appends it.
func (v *ShellVars) Set(key, value string) {
	line := key + "=" + quote(value)
	if at := v.find(key); at >= 0 {
		v.lines[at] = line
		return
	}
	v.lines = append(v.lines, line)
}

// Unset removes every assignment of a variable.
func (v *ShellVars) Unset(key string) {
	for at := v.find(key); at >= 0; at = v.find(key) {
		v.lines = append(v.lines[:at], v.lines[at+1:]...)
	}
}

// Apply sets the owned variables (Setting.Key and Value) and returns what
// changed, as Conf.Apply does.
func (v *ShellVars) Apply(settings []Setting) []Change {
	var ch []Change
	for _, s := range settings {
		old, had := v.Get(s.Key)
		if s.Remove {
			if had {
				v.Unset(s.Key)
				ch = append(ch, Change{Key: s.Key, Had: true, Old: old})
			}
			continue
		}
		if had && old == s.Value {
			continue
		}
		v.Set(s.Key, s.Value)
		ch = append(ch, Change{Key: s.Key, Had: had, Old: old, Wrote: true, New: s.Value})
	}
	return ch
}

// Restore undoes changes whose value is still the one written.
func (v *ShellVars) Restore(changes []Change) {
	for i := len(changes) - 1; i >= 0; i-- {
		ch := changes[i]
		cur, has := v.Get(ch.Key)
		if has != ch.Wrote || has && cur != ch.New {
			continue
		}
		if ch.Had {
			v.Set(ch.Key, ch.Old)
		} else {
			v.Unset(ch.Key)
		}
	}
}
