package ocf

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// WriteMetaData writes the agent's meta-data. With v11 false it is OCF 1.0,
// valid against ra-api-1.dtd (what ocf-tester checks): select parameters
// become strings and 1.1-only actions and attributes are left out. With v11
// true it is OCF 1.1: reloadable parameters, select options, Promoted and
// Unpromoted roles and reload-agent.
func (a *Agent) WriteMetaData(w io.Writer, v11 bool) error {
	b := bufio.NewWriter(w)
	ver := "1.0"
	if v11 {
		ver = "1.1"
	}
	fmt.Fprintf(b, "<?xml version=\"1.0\"?>\n")
	if !v11 {
		fmt.Fprintf(b, "<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n")
	}
	fmt.Fprintf(b, "<resource-agent name=%s version=%s>\n", attr(a.Name), attr(a.Version))
	fmt.Fprintf(b, "<version>%s</version>\n", ver)
	fmt.Fprintf(b, "<longdesc lang=\"en\">\n%s\n</longdesc>\n", text(a.LongDesc))
	fmt.Fprintf(b, "<shortdesc lang=\"en\">%s</shortdesc>\n", text(a.ShortDesc))
	fmt.Fprintf(b, "<parameters>\n")
	for _, p := range a.Params {
		fmt.Fprintf(b, "<parameter name=%s", attr(p.Name))
		if p.Unique {
			fmt.Fprintf(b, " unique=\"1\"")
		}
		if p.Required {
			fmt.Fprintf(b, " required=\"1\"")
		}
		if v11 && p.Reloadable {
			fmt.Fprintf(b, " reloadable=\"1\"")
		}
		fmt.Fprintf(b, ">\n")
		fmt.Fprintf(b, "<longdesc lang=\"en\">\n%s\n</longdesc>\n", text(p.longDesc(v11)))
		fmt.Fprintf(b, "<shortdesc lang=\"en\">%s</shortdesc>\n", text(p.shortDesc()))
		typ := p.Type
		if typ == Select && !v11 {
			typ = String
		}
		fmt.Fprintf(b, "<content type=%s", attr(typ.String()))
		if p.Default != "" {
			fmt.Fprintf(b, " default=%s", attr(p.Default))
		}
		if typ == Select {
			fmt.Fprintf(b, ">\n")
			for _, o := range p.Options {
				fmt.Fprintf(b, "<option value=%s/>\n", attr(o))
			}
			fmt.Fprintf(b, "</content>\n")
		} else {
			fmt.Fprintf(b, "/>\n")
		}
		fmt.Fprintf(b, "</parameter>\n")
	}
	fmt.Fprintf(b, "</parameters>\n")
	fmt.Fprintf(b, "<actions>\n")
	for _, act := range a.metaActions(v11) {
		fmt.Fprintf(b, "<action name=%s timeout=%s", attr(act.Name), attr(seconds(act.timeout())))
		if act.Interval > 0 {
			fmt.Fprintf(b, " interval=%s", attr(seconds(act.Interval)))
		}
		if act.Depth > 0 {
			fmt.Fprintf(b, " depth=\"%d\"", act.Depth)
		}
		if role := act.Role; role != "" {
			if !v11 { // the names Pacemaker understood before OCF 1.1
				role = legacyRole(role)
			}
			fmt.Fprintf(b, " role=%s", attr(role))
		}
		fmt.Fprintf(b, "/>\n")
	}
	fmt.Fprintf(b, "</actions>\n</resource-agent>\n")
	return b.Flush()
}

// metaActions lists the actions meta-data advertises, meta-data itself
// included, leaving out in 1.0 what ra-api-1.dtd does not allow.
func (a *Agent) metaActions(v11 bool) []Action {
	acts := make([]Action, 0, len(a.Actions)+1)
	hasMeta := false
	for _, act := range a.Actions {
		if act.Hidden || !v11 && act.Name == "reload-agent" {
			continue
		}
		hasMeta = hasMeta || act.Name == "meta-data"
		acts = append(acts, act)
	}
	if !hasMeta {
		acts = append(acts, Action{Name: "meta-data", Timeout: 5 * time.Second})
	}
	return acts
}

// timeout is the action's declared timeout, or DefaultTimeout.
func (act *Action) timeout() time.Duration {
	if act.Timeout > 0 {
		return act.Timeout
	}
	return DefaultTimeout
}

func (p *Param) shortDesc() string {
	if p.Deprecated != "" {
		return p.ShortDesc + " (deprecated)"
	}
	return p.ShortDesc
}

// longDesc is the parameter's long description with what meta-data cannot
// say by structure: deprecation, older names, and (in 1.0) the options.
func (p *Param) longDesc(v11 bool) string {
	var s strings.Builder
	s.WriteString(strings.TrimSpace(p.LongDesc))
	if p.Type == Select && !v11 && len(p.Options) > 0 {
		fmt.Fprintf(&s, "\nOne of: %s.", strings.Join(p.Options, ", "))
	}
	if p.Deprecated != "" {
		fmt.Fprintf(&s, "\nDeprecated: %s", p.Deprecated)
	}
	if len(p.Aliases) > 0 {
		fmt.Fprintf(&s, "\nAlso accepted under the older name %s.", strings.Join(p.Aliases, ", "))
	}
	return s.String()
}

func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// legacyRole is a role's name in OCF 1.0 meta-data.
func legacyRole(role string) string {
	switch role {
	case "Promoted":
		return "Master"
	case "Unpromoted":
		return "Slave"
	}
	return role
}

// text escapes s (trimmed) for XML character data. Line breaks stay as they
// are, so that long descriptions read well in the raw meta-data; characters
// XML cannot carry at all become U+FFFD. (Not encoding/xml, whose package
// initialisation every agent invocation would pay for.)
func text(s string) string { return escape(strings.TrimSpace(s), false) }

// attr quotes and escapes s (trimmed) as an XML attribute value.
func attr(s string) string { return `"` + escape(strings.TrimSpace(s), true) + `"` }

func escape(s string, inAttr bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune('\uFFFD')
			i++
			continue
		}
		i += n
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"' && inAttr:
			b.WriteString("&quot;")
		case r == '\r':
			b.WriteString("&#xD;")
		case (r == '\n' || r == '\t') && inAttr:
			fmt.Fprintf(&b, "&#x%X;", r)
		case !xmlChar(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// xmlChar reports whether XML 1.0 allows r in a document.
func xmlChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
