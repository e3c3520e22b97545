// Package command is storhaug's command line: each command lives in a file
// of its own and registers itself; the work is done by the packages below.
package command

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/internal/version"
)

var (
	commands  []*cli.Command
	builders  []func()
	buildOnce sync.Once
)

// later records a function that registers commands: the command tree is
// built only when the command line runs, so that an agent (the same
// binary, run every few seconds by Pacemaker) never pays for it.
func later(build func()) { builders = append(builders, build) }

func register(c *cli.Command) { commands = append(commands, c) }

// exitError is returned by commands that decide their own exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func (e *exitError) Unwrap() error { return e.err }

// errSilent is the error of an exit status that has been explained already.
var errSilent = errors.New("")

func exitWith(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// App returns the command line application.
func App() *cli.App {
	buildOnce.Do(func() {
		for _, build := range builders {
			build()
		}
	})
	cmds := append([]*cli.Command(nil), commands...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	return &cli.App{
		Name:    "storhaug",
		Usage:   "high availability for Samba (CTDB) and NFS-Ganesha clusters under Pacemaker",
		Version: version.Version,
		Description: "Symlinked into /usr/lib/ocf/resource.d/storhaug/ (see 'storhaug install'), this binary is a set of\n" +
			"OCF resource agents; run by its own name it sets up and inspects a storhaug cluster.",
		Commands:        cmds,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
	}
}

// Run runs the command line with args (args[0] is the program name) and
// returns the exit status.
func Run(args []string) int {
	err := App().Run(args)
	if err == nil {
		return 0
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintf(os.Stderr, "storhaug: %v\n", err)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ce cli.ExitCoder
	if errors.As(err, &ce) {
		return ce.ExitCode()
	}
	return 1
}
