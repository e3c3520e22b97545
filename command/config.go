package command

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/setup"
)

func init() { later(configCommands) }

// configCommands registers the file's commands when the command line is built
// (not at start-up: an agent run never builds them).
func configCommands() {
	register(&cli.Command{
		Name:  "config",
		Usage: "check storhaug.conf, or list the keys it may set",
		Subcommands: []*cli.Command{
			{
				Name:  "check",
				Usage: "read the configuration and its drop-ins, report every error (file:line: KEY: ...) and print the effective settings",
				Flags: configFlags(),
				Action: func(c *cli.Context) error {
					cfg, err := loadConfig(c)
					if err != nil {
						return err
					}
					var keys []string
					for k := range cfg.Settings {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
					for _, k := range keys {
						s := cfg.Settings[k]
						fmt.Fprintf(tw, "%s\t# %s:%d\n", setup.Format(k, s.Value), s.File, s.Line)
					}
					tw.Flush()
					fmt.Fprintf(c.App.Writer, "%s: ok (%d nodes, %d storage nodes, %d VIPs, services %v)\n", cfg.File, len(cfg.ClusterNodes), len(cfg.StorageNodes), len(cfg.VIPs), cfg.Services)
					return nil
				},
			},
			{
				Name:  "keys",
				Usage: "list every key storhaug.conf may set",
				Action: func(c *cli.Context) error {
					tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
					for _, k := range setup.Keys() {
						fmt.Fprintf(tw, "%s\t%s\n", k[0], k[1])
					}
					return tw.Flush()
				},
			},
		},
	})
}
