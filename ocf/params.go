package ocf

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBool reads a boolean as resource-agents' ocf_is_true does, and a
// little more strictly: yes, true, on and 1 are true, no, false, off and 0
// are false, in any case; anything else is an error.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "on", "1", "y":
		return true, nil
	case "no", "false", "off", "0", "n":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use yes or no)", s)
}

type value struct {
	raw  string // as given, or the default
	set  bool   // given in the environment (under its name or an alias)
	b    bool
	i    int
	from string // the name it was given under
}

// loadParams reads and checks every declared parameter from OCF_RESKEY_*.
// A malformed or missing required value is OCF_ERR_CONFIGURED, naming the
// parameter.
func (r *Request) loadParams() error {
	r.values = make(map[string]*value, len(r.agent.Params))
	for i := range r.agent.Params {
		p := &r.agent.Params[i]
		v := &value{raw: p.Default}
		for _, name := range append([]string{p.Name}, p.Aliases...) {
			// A blank value counts as unset: the default applies.
			if s, ok := r.lookup("OCF_RESKEY_" + name); ok && strings.TrimSpace(s) != "" {
				v.raw, v.set, v.from = s, true, name
				break
			}
		}
		if v.set && v.from != p.Name {
			r.Log.Warnf("parameter %s is deprecated: use %s", v.from, p.Name)
		}
		if v.set && p.Deprecated != "" && v.raw != "" {
			r.Log.Warnf("parameter %s is deprecated: %s", p.Name, p.Deprecated)
		}
		if p.Required && strings.TrimSpace(v.raw) == "" {
			return Errorf(ErrConfigured, "parameter %s is required", p.Name)
		}
		if err := v.parse(p); err != nil {
			return Errorf(ErrConfigured, "parameter %s: %v", p.Name, err)
		}
		r.values[p.Name] = v
	}
	return nil
}

func (v *value) parse(p *Param) error {
	s := strings.TrimSpace(v.raw)
	if s == "" {
		return nil
	}
	var err error
	switch p.Type {
	case Boolean:
		v.b, err = ParseBool(s)
	case Integer:
		v.i, err = strconv.Atoi(s)
		if err != nil {
			err = fmt.Errorf("%q is not an integer", v.raw)
		}
	case Select:
		for _, o := range p.Options {
			if s == o {
				return nil
			}
		}
		err = fmt.Errorf("%q is not one of %s", v.raw, strings.Join(p.Options, ", "))
	}
	return err
}

func (r *Request) value(name string, t ...Type) *value {
	v, ok := r.values[name]
	if !ok {
		panic(fmt.Sprintf("ocf: %s has no parameter %q", r.agent.Name, name))
	}
	if len(t) > 0 {
		if p := r.agent.Param(name); p.Type != t[0] {
			panic(fmt.Sprintf("ocf: parameter %q of %s is a %s, not a %s", name, r.agent.Name, p.Type, t[0]))
		}
	}
	return v
}

// String returns a parameter's value (or its default), white space trimmed.
func (r *Request) String(name string) string { return strings.TrimSpace(r.value(name).raw) }

// Bool returns a Boolean parameter's value (false when unset with no default).
func (r *Request) Bool(name string) bool { return r.value(name, Boolean).b }

// Int returns an Integer parameter's value (0 when unset with no default).
func (r *Request) Int(name string) int { return r.value(name, Integer).i }

// IsSet reports whether the parameter was given (under its name or an
// alias), rather than left to its default.
func (r *Request) IsSet(name string) bool { return r.value(name).set }
