package ocf

// The agents' documentation: their meta-data rendered as Markdown and as
// man pages (ocf_storhaug_NAME(7)).

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// provider is the OCF provider the agents are documented under (the
// directory name below OCF_ROOT/resource.d).
const provider = "storhaug"

// ManName is the name of the agent's man page, without its section (7):
// ocf_storhaug_NAME, as resource-agents names its pages.
func (a *Agent) ManName() string { return "ocf_" + provider + "_" + a.Name }

// attributes lists what a parameter declaration says besides its
// descriptions, in words: "string, required, unique".
func (p *Param) attributes() []string {
	at := []string{p.Type.String()}
	if p.Required {
		at = append(at, "required")
	}
	if p.Unique {
		at = append(at, "unique")
	}
	if p.Reloadable {
		at = append(at, "reloadable")
	}
	if p.Deprecated != "" {
		at = append(at, "deprecated")
	}
	return at
}

// docActions lists the advertised actions (as OCF 1.1 meta-data lists them).
func (a *Agent) docActions() []Action { return a.metaActions(true) }

// actionLine describes one action declaration: "timeout 20s, interval 10s".
func actionLine(act Action) string {
	s := "timeout " + seconds(act.timeout())
	if act.Interval > 0 {
		s += ", interval " + seconds(act.Interval)
	}
	if act.Depth > 0 {
		s += fmt.Sprintf(", depth %d", act.Depth)
	}
	if act.Role != "" {
		s += ", role " + act.Role
	}
	if act.Name == "reload-agent" {
		s += " (OCF 1.1 only)"
	}
	return s
}

// example is a pcs command creating a resource of this agent with its
// required parameters.
func (a *Agent) example() string {
	s := "pcs resource create my-" + strings.ToLower(a.Name) + " ocf:" + provider + ":" + a.Name
	for _, p := range a.Params {
		if p.Required {
			s += " " + p.Name + "=" + strings.ToUpper(p.Name)
		}
	}
	return s
}

// WriteMarkdown writes the agent's reference page in Markdown, rendered from
// the same declaration as its meta-data.
func (a *Agent) WriteMarkdown(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "# %s (ocf:%s:%s)\n\n", a.Name, provider, a.Name)
	fmt.Fprintf(b, "%s\n\n", mdBody(mdText(a.ShortDesc)))
	if a.Version != "" {
		fmt.Fprintf(b, "Agent version %s.\n\n", mdText(a.Version))
	}
	if ld := strings.TrimSpace(a.LongDesc); ld != "" {
		fmt.Fprintf(b, "%s\n\n", mdBody(ld))
	}
	fmt.Fprintf(b, "```\n%s\n```\n\n", a.example())
	fmt.Fprintf(b, "## Parameters\n\n")
	if len(a.Params) == 0 {
		fmt.Fprintf(b, "None.\n\n")
	}
	for _, p := range a.Params {
		fmt.Fprintf(b, "### `%s`\n\n", p.Name)
		fmt.Fprintf(b, "*%s*", strings.Join(p.attributes(), ", "))
		if sd := strings.TrimSpace(p.ShortDesc); sd != "" {
			fmt.Fprintf(b, " — %s", mdText(sd))
		}
		fmt.Fprintf(b, "\n\n")
		if ld := strings.TrimSpace(p.LongDesc); ld != "" {
			fmt.Fprintf(b, "%s\n\n", mdBody(ld))
		}
		if p.Default != "" {
			fmt.Fprintf(b, "- Default: `%s`\n", mdCode(p.Default))
		} else {
			fmt.Fprintf(b, "- Default: none\n")
		}
		if len(p.Options) > 0 {
			fmt.Fprintf(b, "- One of: %s\n", mdCodes(p.Options))
		}
		if p.Deprecated != "" {
			fmt.Fprintf(b, "- Deprecated: %s\n", mdText(p.Deprecated))
		}
		if len(p.Aliases) > 0 {
			fmt.Fprintf(b, "- Older names, still accepted: %s\n", mdCodes(p.Aliases))
		}
		if p.Reloadable {
			fmt.Fprintf(b, "- Changes take effect without a restart (reload-agent, OCF 1.1).\n")
		}
		fmt.Fprintf(b, "\n")
	}
	fmt.Fprintf(b, "## Actions\n\n| Action | Default operation settings |\n|---|---|\n")
	for _, act := range a.docActions() {
		fmt.Fprintf(b, "| `%s` | %s |\n", act.Name, actionLine(act))
	}
	fmt.Fprintf(b, "\nThis page is generated from the agent's declaration, like its meta-data (`storhaug meta-data %s`).\n", a.Name)
	return b.Flush()
}

// mdBody keeps a long description's lines, escaping what Markdown would
// take for HTML.
func mdBody(s string) string { return strings.ReplaceAll(s, "<", `\<`) }

func mdText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }

func mdCodes(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "`" + mdCode(s) + "`"
	}
	return strings.Join(q, ", ")
}

// WriteMan writes the agent's reference page as a man page (roff, man
// macros, section 7, named as ManName says), rendered from the same
// declaration as its meta-data.
func (a *Agent) WriteMan(w io.Writer) error {
	b := bufio.NewWriter(w)
	title := strings.ToUpper(a.ManName())
	fmt.Fprintf(b, ".TH %s 7 \"\" %s \"OCF resource agents\"\n", roffArg(title), roffArg(provider+" "+a.Version))
	fmt.Fprintf(b, ".SH NAME\n%s \\- %s\n", roffText(a.ManName()), roffText(mdText(a.ShortDesc)))
	fmt.Fprintf(b, ".SH SYNOPSIS\n")
	acts := a.ActionNames()
	for i, n := range acts {
		acts[i] = `\fB` + roffText(n) + `\fR`
	}
	fmt.Fprintf(b, "\\fB%s\\fR [ %s ]\n", roffText(a.Name), strings.Join(acts, " | "))
	fmt.Fprintf(b, ".SH DESCRIPTION\n")
	roffParagraphs(b, a.LongDesc)
	fmt.Fprintf(b, ".SH SUPPORTED PARAMETERS\n")
	if len(a.Params) == 0 {
		fmt.Fprintf(b, "None.\n")
	}
	for _, p := range a.Params {
		fmt.Fprintf(b, ".TP\n\\fB%s\\fR (%s)\n", roffText(p.Name), roffText(strings.Join(p.attributes(), ", ")))
		if sd := mdText(p.ShortDesc); sd != "" {
			fmt.Fprintf(b, "%s\n", roffText(sd))
		}
		if ld := strings.TrimSpace(p.LongDesc); ld != "" {
			fmt.Fprintf(b, ".IP\n")
			roffLines(b, ld)
		}
		fmt.Fprintf(b, ".IP\n")
		if p.Default != "" {
			fmt.Fprintf(b, "Default: \\fB%s\\fR\n", roffText(p.Default))
		} else {
			fmt.Fprintf(b, "Default: none\n")
		}
		if len(p.Options) > 0 {
			fmt.Fprintf(b, ".br\nOne of: %s\n", roffText(strings.Join(p.Options, ", ")))
		}
		if p.Deprecated != "" {
			fmt.Fprintf(b, ".br\nDeprecated: %s\n", roffText(mdText(p.Deprecated)))
		}
		if len(p.Aliases) > 0 {
			fmt.Fprintf(b, ".br\nOlder names, still accepted: %s\n", roffText(strings.Join(p.Aliases, ", ")))
		}
		if p.Reloadable {
			fmt.Fprintf(b, ".br\nChanges take effect without a restart (reload-agent, OCF 1.1).\n")
		}
	}
	fmt.Fprintf(b, ".SH SUPPORTED ACTIONS\n")
	for _, act := range a.docActions() {
		fmt.Fprintf(b, ".TP\n\\fB%s\\fR\n%s\n", roffText(act.Name), roffText(actionLine(act)))
	}
	fmt.Fprintf(b, ".SH EXAMPLE\n.nf\n%s\n.fi\n", roffText(a.example()))
	fmt.Fprintf(b, ".SH SEE ALSO\n\\fBstorhaug\\fR(8), \\fBcrm_resource\\fR(8), \\fBpcs\\fR(8)\n")
	return b.Flush()
}

// roffParagraphs writes s as paragraphs separated by blank lines.
func roffParagraphs(b *bufio.Writer, s string) {
	for i, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		if i > 0 {
			fmt.Fprintf(b, ".PP\n")
		}
		roffLines(b, para)
	}
}

// roffLines writes s for filling; blank lines become paragraph breaks
// (within an indented paragraph) and lines that look like list items or are
// indented start a line of their own.
func roffLines(b *bufio.Writer, s string) {
	first := true
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "":
			fmt.Fprintf(b, ".sp\n")
			first = true
			continue
		case !first && (line != strings.TrimLeft(line, " \t") || strings.HasPrefix(t, "- ") || strings.HasPrefix(t, "* ")):
			fmt.Fprintf(b, ".br\n")
		}
		fmt.Fprintf(b, "%s\n", roffText(t))
		first = false
	}
}

// roffText escapes s for a roff text line: backslashes are escaped, and a
// line must not start with a control character.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "\n", " ")
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffArg quotes s as a macro argument.
func roffArg(s string) string {
	return `"` + strings.ReplaceAll(roffText(s), `"`, `\(dq`) + `"`
}
