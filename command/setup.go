package command

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/setup"
)

func configFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: setup.DefaultConfigFile, Usage: "the configuration `FILE`", EnvVars: []string{"STORHAUG_CONFIG"}},
		&cli.StringFlag{Name: "config-dir", Usage: "drop-in `DIR` read after FILE (default: storhaug.d beside FILE)"},
	}
}

func timeoutFlag(def time.Duration) cli.Flag {
	return &cli.DurationFlag{Name: "timeout", Value: def, Usage: "give up after this long"}
}

func loadConfig(c *cli.Context) (*setup.Config, error) {
	file := c.String("config")
	dir := c.String("config-dir")
	if !c.IsSet("config-dir") {
		dir = setup.DefaultConfigDir(file)
	}
	cfg, err := setup.Load(file, dir)
	if err != nil {
		return nil, exitWith(6, "configuration:\n%v", err)
	}
	if err := cfg.CheckParams(agentHasParam); err != nil {
		return nil, exitWith(6, "configuration:\n%v", err)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
	}
	return cfg, nil
}

// agentHasParam reports whether storhaug's agent declares param.
func agentHasParam(agent, param string) bool {
	a := agents.Lookup(agent)
	return a != nil && a.Param(param) != nil
}

func printChanges(w io.Writer, changes []setup.Change) {
	for _, ch := range changes {
		fmt.Fprintf(w, "  %s\n", ch)
	}
}

func cmdContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, c.Duration("timeout"))
}

func init() { later(setupCommands) }

// setupCommands registers the file's commands when the command line is built
// (not at start-up: an agent run never builds them).
func setupCommands() {
	register(&cli.Command{
		Name:  "setup",
		Usage: "create or update storhaug's resources in Pacemaker from the configuration (idempotent)",
		Description: "Reads the configuration, builds the resources, clones, constraints and node attributes it\n" +
			"describes, and writes them into the CIB in one epoch-checked patch with Pacemaker's own tools\n" +
			"(cibadmin, crm_diff). Only objects whose ids begin with \"" + setup.IDPrefix + "\" are touched; a second run\n" +
			"with the same configuration changes nothing. With CIB_file=FILE in the environment it works on\n" +
			"that CIB file instead of the live cluster.",
		Flags: append(configFlags(),
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the XML and the equivalent pcs commands; change nothing"},
			&cli.DurationFlag{Name: "wait", Usage: "after writing, wait up to this long for the cluster to settle"},
			timeoutFlag(2*time.Minute),
		),
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(c)
			defer cancel()
			r := setup.Exec{}
			w := c.App.Writer
			if c.Bool("dry-run") {
				cur, err := setup.QueryCIB(ctx, r)
				if err != nil {
					return err
				}
				m := setup.BuildFor(cfg, cur)
				_, changes, err := setup.Plan(cur, cfg, m, setup.PlanOptions{CreateNodes: setup.Offline()})
				if err != nil {
					return err
				}
				fmt.Fprintln(w, "<!-- storhaug setup --dry-run: the CIB objects storhaug would own -->")
				w.Write(m.XML())
				fmt.Fprintln(w, "\n# The equivalent pcs commands (for reference: storhaug runs Pacemaker's own tools, not pcs):")
				for _, l := range m.PCS() {
					fmt.Fprintln(w, l)
				}
				fmt.Fprintf(w, "\n# Changes against the current CIB (%d):\n", len(changes))
				printChanges(w, changes)
				return nil
			}
			markReady(c, ctx, r, cfg)
			_, after, changes, changed, err := setup.Update(ctx, r, func(cur *setup.Element) (*setup.Element, []setup.Change, error) {
				return setup.Plan(cur, cfg, setup.BuildFor(cfg, cur), setup.PlanOptions{CreateNodes: setup.Offline()})
			})
			if err != nil {
				return err
			}
			if !changed {
				fmt.Fprintf(w, "storhaug: cluster %s is already set up as %s says; nothing changed\n", cfg.Name, cfg.File)
			} else {
				fmt.Fprintf(w, "storhaug: set up cluster %s (%d changes):\n", cfg.Name, len(changes))
				printChanges(w, changes)
			}
			if after != nil && strings.EqualFold(setup.Property(after, "stonith-enabled"), "false") {
				why := "the cluster has stonith-enabled=false"
				if cfg.StonithSet && !cfg.Stonith {
					why = "HA_STONITH_ENABLED=false"
				}
				fmt.Fprintf(c.App.ErrWriter, "warning: fencing is disabled (%s): a node that hangs instead of dying can corrupt data; configure fencing devices for production\n", why)
			}
			return waitSettle(c, ctx, r)
		},
	})
	register(&cli.Command{
		Name:  "teardown",
		Usage: "remove exactly what storhaug setup created (resources are stopped first)",
		Flags: append(configFlags(),
			&cli.BoolFlag{Name: "no-stop", Usage: "delete at once, without stopping the resources first"},
			timeoutFlag(3*time.Minute),
		),
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(c)
			defer cancel()
			r := setup.Exec{}
			if !setup.Offline() && !c.Bool("no-stop") {
				_, _, _, changed, err := setup.Update(ctx, r, func(cur *setup.Element) (*setup.Element, []setup.Change, error) {
					return setup.PlanStop(cur, cfg)
				})
				if err != nil {
					return err
				}
				if changed {
					fmt.Fprintln(c.App.Writer, "storhaug: stopping storhaug's resources")
					if err := setup.WaitSettle(ctx, r); err != nil {
						return err
					}
				}
			}
			_, _, changes, changed, err := setup.Update(ctx, r, func(cur *setup.Element) (*setup.Element, []setup.Change, error) {
				return setup.Plan(cur, cfg, nil, setup.PlanOptions{})
			})
			if err != nil {
				return err
			}
			if !setup.Offline() {
				removed, err := setup.RemoveOwnerRecords(cfg)
				for _, f := range removed {
					fmt.Fprintf(c.App.Writer, "storhaug: removed %s\n", f)
				}
				if err != nil {
					return err
				}
			}
			if !changed {
				fmt.Fprintln(c.App.Writer, "storhaug: nothing of storhaug's is in the CIB")
				return nil
			}
			fmt.Fprintf(c.App.Writer, "storhaug: removed from cluster %s (%d changes):\n", cfg.Name, len(changes))
			printChanges(c.App.Writer, changes)
			return nil
		},
	})
}

func waitSettle(c *cli.Context, ctx context.Context, r setup.Runner) error {
	d := c.Duration("wait")
	if d <= 0 || setup.Offline() {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	if err := setup.WaitSettle(wctx, r); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "storhaug: cluster settled in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}
