package command

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/install"
)

func installFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ocf-root", Value: install.DefaultOCFRoot, Usage: "the OCF root directory", EnvVars: []string{"OCF_ROOT"}},
		&cli.StringFlag{Name: "binary", Usage: "the storhaug binary the links point to (default: this one)"},
	}
}

func binaryPath(c *cli.Context) (string, error) {
	if b := c.String("binary"); b != "" {
		return filepath.Abs(b)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(exe)
}

func init() { later(installCommands) }

// installCommands registers the file's commands when the command line is built
// (not at start-up: an agent run never builds them).
func installCommands() {
	register(&cli.Command{
		Name:  "install",
		Usage: "link every agent into OCF_ROOT/resource.d/storhaug/ (idempotent)",
		Flags: installFlags(),
		Action: func(c *cli.Context) error {
			bin, err := binaryPath(c)
			if err != nil {
				return err
			}
			changed, err := install.Link(c.String("ocf-root"), bin, agents.Names())
			for _, p := range changed {
				fmt.Fprintf(c.App.Writer, "%s -> %s\n", p, bin)
			}
			return err
		},
	})
	register(&cli.Command{
		Name:  "uninstall",
		Usage: "remove the agent links that point to this binary",
		Flags: installFlags(),
		Action: func(c *cli.Context) error {
			bin, err := binaryPath(c)
			if err != nil {
				return err
			}
			removed, err := install.Unlink(c.String("ocf-root"), bin, agents.Names())
			for _, p := range removed {
				fmt.Fprintf(c.App.Writer, "removed %s\n", p)
			}
			return err
		},
	})
}
