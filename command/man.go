package command

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/internal/version"
	"github.com/storhaug/storhaug/setup"
)

// manPage is the file name of the command line's manual page, storhaug(8).
const manPage = "storhaug.8"

// writeMan writes storhaug(8) from the command tree: every command and
// subcommand with its arguments and flags, as --help shows them. (urfave/cli's
// own man page generator is left out of the build: see the Makefile's
// BUILDTAGS.)
func writeMan(w io.Writer, app *cli.App) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, ".TH STORHAUG 8 \"\" %s \"System Administration\"\n", manArg("storhaug "+version.Version))
	fmt.Fprintf(b, ".SH NAME\nstorhaug \\- %s\n", manText(app.Usage))
	fmt.Fprintf(b, ".SH SYNOPSIS\n\\fBstorhaug\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]\n.br\n")
	fmt.Fprintf(b, "\\fB/usr/lib/ocf/resource.d/storhaug/\\fR\\fIAGENT\\fR \\fIACTION\\fR\n")
	fmt.Fprintf(b, ".SH DESCRIPTION\n")
	fmt.Fprintf(b, "storhaug is one binary. Run through a link named after one of its OCF resource agents, as Pacemaker runs\n")
	fmt.Fprintf(b, "\\fI/usr/lib/ocf/resource.d/storhaug/AGENT\\fR, it is that agent (see \\fBAGENTS\\fR).\n")
	fmt.Fprintf(b, "Run by its own name, it sets up, changes and inspects a storhaug cluster, as described by\n")
	fmt.Fprintf(b, "\\fI%s\\fR: the commands below.\n", manText(setup.DefaultConfigFile))
	fmt.Fprintf(b, ".SH COMMANDS\n")
	for _, c := range app.Commands {
		writeManCommand(b, c, nil)
	}
	fmt.Fprintf(b, ".SH GLOBAL OPTIONS\n")
	fmt.Fprintf(b, ".TP\n\\fB\\-\\-help\\fR, \\fB\\-h\\fR\nshow help (also after a command)\n")
	fmt.Fprintf(b, ".TP\n\\fB\\-\\-version\\fR, \\fB\\-v\\fR\nprint the version\n")
	fmt.Fprintf(b, ".SH AGENTS\n")
	for _, n := range agents.Names() {
		a := agents.Lookup(n)
		fmt.Fprintf(b, ".TP\n\\fBocf:storhaug:%s\\fR\n%s; see \\fB%s\\fR(7).\n", manText(n), manText(a.ShortDesc), manText(a.ManName()))
	}
	fmt.Fprintf(b, ".SH FILES\n")
	fmt.Fprintf(b, ".TP\n\\fI%s\\fR\nthe cluster's configuration (\\fBstorhaug config keys\\fR lists its keys), read as data:\n", manText(setup.DefaultConfigFile))
	fmt.Fprintf(b, "KEY=\"value\" lines, nothing run by a shell; drop-ins from \\fIstorhaug.d/*.conf\\fR beside it\n")
	fmt.Fprintf(b, ".TP\n\\fI/usr/share/doc/storhaug/examples/storhaug.conf\\fR\nan example configuration to start from\n")
	fmt.Fprintf(b, ".SH ENVIRONMENT\n")
	fmt.Fprintf(b, ".TP\n\\fBCIB_file\\fR\nwork on this CIB file instead of the live cluster\n")
	fmt.Fprintf(b, ".SH EXIT STATUS\n0 on success; otherwise non-zero with a message on standard error.\n")
	fmt.Fprintf(b, ".SH SEE ALSO\n")
	var see []string
	for _, n := range agents.Names() {
		see = append(see, "\\fB"+manText(agents.Lookup(n).ManName())+"\\fR(7)")
	}
	see = append(see, "\\fBpcs\\fR(8)", "\\fBcrm_mon\\fR(8)", "\\fBctdb\\fR(1)")
	fmt.Fprintf(b, "%s\n", strings.Join(see, ", "))
	return b.Flush()
}

// writeManCommand writes one command (and its subcommands) as a tagged
// paragraph with its flags indented below.
func writeManCommand(b *bufio.Writer, c *cli.Command, parents []string) {
	if c.Hidden || c.Name == helpName {
		return
	}
	path := append(append([]string(nil), parents...), c.Name)
	if subs := visibleSubcommands(c); len(subs) > 0 {
		for _, sub := range subs {
			writeManCommand(b, sub, path)
		}
		return
	}
	fmt.Fprintf(b, ".TP\n\\fBstorhaug %s\\fR", manText(strings.Join(path, " ")))
	if len(c.Flags) > 0 {
		fmt.Fprintf(b, " [\\fIOPTIONS\\fR]")
	}
	if c.ArgsUsage != "" {
		fmt.Fprintf(b, " \\fI%s\\fR", manText(c.ArgsUsage))
	}
	fmt.Fprintf(b, "\n%s\n", manText(c.Usage))
	if len(c.Flags) == 0 {
		return
	}
	fmt.Fprintf(b, ".RS\n")
	for _, f := range c.Flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() || f == cli.HelpFlag {
			continue // --help: under GLOBAL OPTIONS
		}
		fmt.Fprintf(b, ".TP\n%s\n", manFlag(f))
		if d, ok := f.(cli.DocGenerationFlag); ok {
			_, usage := unquoteUsage(d.GetUsage())
			line := usage
			if def := flagDefault(d); def != "" {
				line += " (default: " + def + ")"
			}
			if env := d.GetEnvVars(); len(env) > 0 {
				line += " [$" + strings.Join(env, ", $") + "]"
			}
			fmt.Fprintf(b, "%s\n", manText(line))
		}
	}
	fmt.Fprintf(b, ".RE\n")
}

// helpName is the help command urfave/cli adds to a command it runs.
const helpName = "help"

// visibleSubcommands are c's subcommands as the manual and the completion
// show them: not hidden, and not the help command urfave/cli adds.
func visibleSubcommands(c *cli.Command) []*cli.Command {
	var subs []*cli.Command
	for _, s := range c.Subcommands {
		if !s.Hidden && s.Name != helpName {
			subs = append(subs, s)
		}
	}
	return subs
}

// manFlag is a flag's names as the tag of its paragraph: "--config FILE, -c FILE".
func manFlag(f cli.Flag) string {
	placeholder := ""
	if d, ok := f.(cli.DocGenerationFlag); ok && d.TakesValue() {
		placeholder, _ = unquoteUsage(d.GetUsage())
		if placeholder == "" {
			placeholder = valueName(f)
		}
		placeholder = " \\fI" + manText(placeholder) + "\\fR"
	}
	var names []string
	for _, n := range f.Names() {
		dash := "\\-\\-"
		if len(n) == 1 {
			dash = "\\-"
		}
		names = append(names, "\\fB"+dash+manText(n)+"\\fR"+placeholder)
	}
	return strings.Join(names, ", ")
}

// unquoteUsage splits a flag's usage into its placeholder (the word quoted
// in backticks, as --help shows it) and the usage without the backticks.
func unquoteUsage(usage string) (placeholder, text string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	name := usage[i+1 : i+1+j]
	return name, usage[:i] + name + usage[i+1+j+1:]
}

// valueName is the placeholder of a flag's value when its usage names none.
func valueName(f cli.Flag) string {
	switch f.(type) {
	case *cli.DurationFlag:
		return "DURATION"
	case *cli.IntFlag:
		return "N"
	}
	return "VALUE"
}

// flagDefault is the default a flag's help shows, or "" for a switch or a
// flag without one.
func flagDefault(d cli.DocGenerationFlag) string {
	if !d.TakesValue() {
		return ""
	}
	switch v := d.GetDefaultText(); v {
	case "", "0", "0s", `""`:
		return ""
	default:
		return v
	}
}

// manText escapes s for a roff text line: backslashes and dashes are
// escaped (a plain "-" may be typeset as a hyphen), and a line must not
// start with a control character.
func manText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	s = strings.ReplaceAll(s, "\n", " ")
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// manArg quotes s as a macro argument.
func manArg(s string) string {
	return `"` + strings.ReplaceAll(manText(s), `"`, `\(dq`) + `"`
}
