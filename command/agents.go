package command

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/internal/version"
	"github.com/storhaug/storhaug/ocf"
)

func lookupAgent(name string) (*ocf.Agent, error) {
	a := agents.Lookup(name)
	if a == nil {
		return nil, exitWith(2, "no agent called %q (storhaug agents lists them)", name)
	}
	return a, nil
}

func init() { later(agentsCommands) }

// agentsCommands registers the file's commands when the command line is built
// (not at start-up: an agent run never builds them).
func agentsCommands() {
	register(&cli.Command{
		Name:  "agents",
		Usage: "list the OCF resource agents, one name per line",
		Action: func(c *cli.Context) error {
			for _, n := range agents.Names() {
				fmt.Fprintln(c.App.Writer, n)
			}
			return nil
		},
	})
	register(&cli.Command{
		Name:      "agent",
		Usage:     "run an agent's action as Pacemaker would",
		ArgsUsage: "NAME ACTION",
		Action: func(c *cli.Context) error {
			a, err := lookupAgent(c.Args().First())
			if err != nil {
				return err
			}
			// Normally main runs a known agent before the command line is
			// parsed; this path is taken only when flags come first.
			code := a.Run(context.Background(), c.Args().Tail(), os.LookupEnv, c.App.Writer, c.App.ErrWriter)
			if code != ocf.Success {
				// No message: the agent's exit reason must stay the last line.
				return &exitError{code: int(code), err: errSilent}
			}
			return nil
		},
	})
	register(&cli.Command{
		Name: "meta-data",
		Usage: "print an agent's meta-data as the agent prints it for Pacemaker: OCF 1.1 when\n" +
			"OCF_RA_VERSION_MAJOR=1 and OCF_RA_VERSION_MINOR>=1 (Pacemaker 2.1 exports them) or with --ocf-1.1, else 1.0",
		ArgsUsage: "NAME",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "ocf-1.1", Usage: "OCF 1.1 meta-data, as with OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=1"}},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return exitWith(2, "meta-data: no agent NAME given (storhaug agents lists them)")
			}
			// urfave/cli stops parsing flags at NAME: whatever follows it
			// would be dropped silently, so it is refused instead.
			if c.NArg() > 1 {
				return exitWith(2, "meta-data: unexpected %q after NAME %q: it takes one NAME, with flags before it (storhaug meta-data --ocf-1.1 %s)",
					c.Args().Get(1), c.Args().First(), c.Args().First())
			}
			a, err := lookupAgent(c.Args().First())
			if err != nil {
				return err
			}
			// The agent's own meta-data action, with this process's
			// environment: what Pacemaker gets from the agent.
			env := ocf.Env(os.LookupEnv)
			if c.Bool("ocf-1.1") {
				env = func(k string) (string, bool) {
					switch k {
					case "OCF_RA_VERSION_MAJOR", "OCF_RA_VERSION_MINOR":
						return "1", true
					}
					return os.LookupEnv(k)
				}
			}
			if code := a.Run(context.Background(), []string{"meta-data"}, env, c.App.Writer, c.App.ErrWriter); code != ocf.Success {
				return &exitError{code: int(code), err: errSilent}
			}
			return nil
		},
	})
	register(&cli.Command{
		Name:  "version",
		Usage: "print storhaug's version",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, version.Version)
			return nil
		},
	})
}
