package command

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/setup"
)

// applyEdit writes the cluster for the edited configuration, then the
// configuration files.
func applyEdit(c *cli.Context, cfg, next *setup.Config, e setup.Edit, what string) error {
	ctx, cancel := cmdContext(c)
	defer cancel()
	r := setup.Exec{}
	markReady(c, ctx, r, next)
	_, _, changes, changed, err := setup.Update(ctx, r, func(cur *setup.Element) (*setup.Element, []setup.Change, error) {
		return setup.Plan(cur, next, setup.BuildFor(next, cur), setup.PlanOptions{CreateNodes: setup.Offline()})
	})
	if err != nil {
		return err
	}
	if err := cfg.Save(e); err != nil {
		return fmt.Errorf("the cluster is updated but the configuration is not (%v): edit it by hand, then run storhaug setup", err)
	}
	if changed {
		fmt.Fprintf(c.App.Writer, "storhaug: %s (%d changes):\n", what, len(changes))
		printChanges(c.App.Writer, changes)
	} else {
		fmt.Fprintf(c.App.Writer, "storhaug: %s: the cluster already matched\n", what)
	}
	for k, v := range e {
		fmt.Fprintf(c.App.Writer, "  %s\n", setup.Format(k, v))
	}
	return waitSettle(c, ctx, r)
}

// markReady, on a live cluster set up by a storhaug without the
// storhaug-ready clone, marks the nodes whose services run ready before
// the update (setup.MarkReady), so that no address moves. A failure is a
// warning: the update still works, with a move of the addresses.
func markReady(c *cli.Context, ctx context.Context, r setup.Runner, cfg *setup.Config) {
	if setup.Offline() {
		return
	}
	marked, err := setup.MarkReady(ctx, r, cfg)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: cannot mark the nodes whose services run as %s=1 (%v): the addresses may move away and back once\n", setup.AttrReady, err)
	} else if len(marked) > 0 {
		fmt.Fprintf(c.App.Writer, "storhaug: services run on %v: marked %s=1 there, so that no address moves\n", marked, setup.AttrReady)
	}
}

func init() { later(nodesCommands) }

// nodesCommands registers the file's commands when the command line is built
// (not at start-up: an agent run never builds them).
func nodesCommands() {
	register(&cli.Command{
		Name:      "add",
		Usage:     "add a storage node (already a member of the corosync cluster) and optionally its VIP",
		ArgsUsage: "NODE [VIP]",
		Flags: append(configFlags(),
			&cli.DurationFlag{Name: "wait", Usage: "wait up to this long for the cluster to settle"},
			timeoutFlag(2*time.Minute)),
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return exitWith(2, "usage: storhaug add NODE [VIP]")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			e, next, err := cfg.AddNode(c.Args().Get(0), c.Args().Get(1))
			if err != nil {
				return exitWith(2, "add %s: %v", c.Args().Get(0), err)
			}
			return applyEdit(c, cfg, next, e, "added node "+c.Args().Get(0))
		},
	})
	register(&cli.Command{
		Name:      "remove",
		Aliases:   []string{"delete"},
		Usage:     "remove a node from storhaug (its VIP goes with it); corosync membership stays yours to change",
		ArgsUsage: "NODE",
		Flags: append(configFlags(),
			&cli.DurationFlag{Name: "wait", Usage: "wait up to this long for the cluster to settle"},
			timeoutFlag(2*time.Minute)),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitWith(2, "usage: storhaug remove NODE")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			e, gone, next, err := cfg.RemoveNode(c.Args().First())
			if err != nil {
				return exitWith(2, "remove %s: %v", c.Args().First(), err)
			}
			for _, v := range gone {
				fmt.Fprintf(c.App.Writer, "storhaug: VIP %s (home %s) goes with it\n", v, c.Args().First())
			}
			return applyEdit(c, cfg, next, e, "removed node "+c.Args().First())
		},
	})
}
