package command

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/agents"
)

func init() { later(completionCommands) }

// completionCommands registers the file's commands when the command line is
// built (not at start-up: an agent run never builds them).
func completionCommands() {
	register(&cli.Command{
		Name:  "completion",
		Usage: "print a shell completion script",
		Subcommands: []*cli.Command{{
			Name:  "bash",
			Usage: "print the bash completion script (the package installs it as /usr/share/bash-completion/completions/storhaug)",
			Action: func(c *cli.Context) error {
				return writeBashCompletion(c.App.Writer, c.App)
			},
		}},
	})
}

// completionNode is one command path of the tree: "", "config", "config check".
type completionNode struct {
	path       string
	words      []string // subcommands, or agent names for an agent's NAME
	flags      []string // every name of every flag, with dashes
	valueFlags []string // the flags that take a value
}

// completionNodes flattens the command tree, root first.
func completionNodes(app *cli.App) []completionNode {
	var nodes []completionNode
	var walk func(path string, cmds []*cli.Command, flags []cli.Flag, argsUsage string)
	walk = func(path string, cmds []*cli.Command, flags []cli.Flag, argsUsage string) {
		n := completionNode{path: path}
		for _, c := range cmds {
			n.words = append(n.words, c.Name)
		}
		if strings.HasPrefix(argsUsage, "NAME") {
			n.words = append(n.words, agents.Names()...)
		}
		seen := map[string]bool{}
		for _, f := range append(flags, cli.HelpFlag) {
			d, _ := f.(cli.DocGenerationFlag)
			for _, name := range f.Names() {
				dashed := "--" + name
				if len(name) == 1 {
					dashed = "-" + name
				}
				if seen[dashed] {
					continue // urfave/cli adds --help to a command it runs
				}
				seen[dashed] = true
				n.flags = append(n.flags, dashed)
				if d != nil && d.TakesValue() {
					n.valueFlags = append(n.valueFlags, dashed)
				}
			}
		}
		sort.Strings(n.words)
		sort.Strings(n.flags)
		nodes = append(nodes, n)
		for _, c := range cmds {
			p := c.Name
			if path != "" {
				p = path + " " + c.Name
			}
			walk(p, visibleSubcommands(c), c.Flags, c.ArgsUsage)
		}
	}
	var top []*cli.Command
	for _, c := range app.Commands {
		if !c.Hidden && c.Name != helpName {
			top = append(top, c)
		}
	}
	walk("", top, []cli.Flag{cli.VersionFlag}, "")
	return nodes
}

// writeBashCompletion writes a bash completion script for the command tree:
// subcommands, flags, and agent names where a command takes one; a flag's
// value is left to bash's file name completion.
func writeBashCompletion(w io.Writer, app *cli.App) error {
	nodes := completionNodes(app)
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "# bash completion for storhaug(8), written by 'storhaug completion bash' from its command tree.\n")
	fmt.Fprintf(b, "_storhaug() {\n")
	fmt.Fprintf(b, "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n")
	fmt.Fprintf(b, "\tlocal cmd= next i words\n")
	fmt.Fprintf(b, "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n")
	fmt.Fprintf(b, "\t\tnext=\"${cmd:+$cmd }${COMP_WORDS[i]}\"\n")
	fmt.Fprintf(b, "\t\tcase $next in\n")
	var paths []string
	for _, n := range nodes[1:] {
		paths = append(paths, bashQuote(n.path))
	}
	fmt.Fprintf(b, "\t\t%s) cmd=$next ;;\n", strings.Join(paths, "|"))
	fmt.Fprintf(b, "\t\tesac\n")
	fmt.Fprintf(b, "\tdone\n")
	fmt.Fprintf(b, "\tcase \"$cmd:$prev\" in\n")
	var values []string
	for _, n := range nodes {
		for _, f := range n.valueFlags {
			values = append(values, bashQuote(n.path+":"+f))
		}
	}
	if len(values) > 0 {
		fmt.Fprintf(b, "\t%s) return 0 ;; # a flag's value: bash completes file names\n", strings.Join(values, "|"))
	}
	fmt.Fprintf(b, "\tesac\n")
	fmt.Fprintf(b, "\tcase $cur in\n")
	fmt.Fprintf(b, "\t-*)\n\t\tcase $cmd in\n")
	for _, n := range nodes {
		fmt.Fprintf(b, "\t\t%s) words=%s ;;\n", bashQuote(n.path), bashQuote(strings.Join(n.flags, " ")))
	}
	fmt.Fprintf(b, "\t\tesac ;;\n")
	fmt.Fprintf(b, "\t*)\n\t\tcase $cmd in\n")
	for _, n := range nodes {
		if len(n.words) > 0 {
			fmt.Fprintf(b, "\t\t%s) words=%s ;;\n", bashQuote(n.path), bashQuote(strings.Join(n.words, " ")))
		}
	}
	fmt.Fprintf(b, "\t\tesac ;;\n")
	fmt.Fprintf(b, "\tesac\n")
	fmt.Fprintf(b, "\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n")
	fmt.Fprintf(b, "}\n")
	fmt.Fprintf(b, "complete -o default -F _storhaug storhaug\n")
	return b.Flush()
}

// bashQuote quotes s as one bash word, in single quotes.
func bashQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
