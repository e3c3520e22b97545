package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/ganesha"
	"github.com/storhaug/storhaug/pacemaker"
	"github.com/storhaug/storhaug/setup"
)

// localGrace asks the NFS-Ganesha on this node whether it is in grace; nil
// when it cannot tell (no ganesha here, no D-Bus).
func localGrace(ctx context.Context) *bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := ganesha.Connect(ctx, ganesha.SystemBusAddress())
	if err != nil {
		return nil
	}
	defer b.Close()
	in, err := b.GetGrace(ctx)
	if err != nil {
		return nil
	}
	return &in
}

// localNodeName is this node's name in the cluster, "" when it cannot
// tell.
func localNodeName(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name, err := pacemaker.LocalNode(ctx, pacemaker.Exec{})
	if err != nil {
		return ""
	}
	return name
}

func init() { later(statusCommands) }

// statusCommands registers the file's commands when the command line is built
// (not at start-up: an agent run never builds them).
func statusCommands() {
	register(&cli.Command{
		Name:  "status",
		Usage: "show the cluster: nodes, where each VIP is, services, CTDB leader, failures",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
			timeoutFlag(30 * time.Second),
		},
		Action: func(c *cli.Context) error {
			if o := c.String("output"); o != "text" && o != "json" {
				return exitWith(2, "--output: %q is not text or json", o)
			}
			ctx, cancel := cmdContext(c)
			defer cancel()
			st, err := setup.ReadStatus(ctx, setup.Exec{})
			if err != nil {
				return exitWith(3, "%v", err)
			}
			if !st.Offline {
				// Only this node's ganesha answers on this node's bus.
				if me := localNodeName(ctx); me != "" {
					for _, n := range st.Nodes {
						if n.Name == me && n.State == "online" {
							st.SetGrace(me, localGrace(ctx))
						}
					}
				}
			}
			if c.String("output") == "json" {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			st.WriteText(c.App.Writer)
			return nil
		},
	})
	register(&cli.Command{
		Name:  "cleanup",
		Usage: "clear the failures of storhaug's resources (crm_resource --cleanup)",
		Description: "Clears the failed operations and fail counts Pacemaker remembers for storhaug's resources, so\n" +
			"that it probes them afresh and may place them again where they failed. Refuses a cluster whose\n" +
			"cluster-name is not the configuration's HA_NAME. With CIB_file=FILE it clears them in that file.",
		Flags: append(configFlags(),
			&cli.StringFlag{Name: "node", Usage: "only on this `NODE`"},
			timeoutFlag(time.Minute),
		),
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(c)
			defer cancel()
			cleaned, err := setup.Cleanup(ctx, setup.Exec{}, cfg, c.String("node"))
			if errors.Is(err, setup.ErrNotSetUp) {
				fmt.Fprintf(c.App.Writer, "storhaug: %v; nothing to clean up\n", err)
				return nil
			}
			for _, cl := range cleaned {
				if cl.Node != "" {
					fmt.Fprintf(c.App.Writer, "cleaned up %s on %s\n", cl.Resource, cl.Node)
				} else {
					fmt.Fprintf(c.App.Writer, "cleaned up %s\n", cl.Resource)
				}
			}
			if err != nil {
				return err
			}
			if len(cleaned) == 0 {
				fmt.Fprintln(c.App.Writer, "storhaug: no failures to clear")
			}
			return nil
		},
	})
}
