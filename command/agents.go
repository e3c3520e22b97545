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
		Name:      "meta-data",
		Usage:     "print an agent's meta-data (OCF 1.0; --ocf-1.1 for 1.1)",
		ArgsUsage: "NAME",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "ocf-1.1", Usage: "OCF 1.1 meta-data"}},
		Action: func(c *cli.Context) error {
			a, err := lookupAgent(c.Args().First())
			if err != nil {
				return err
			}
			return a.WriteMetaData(c.App.Writer, c.Bool("ocf-1.1"))
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
