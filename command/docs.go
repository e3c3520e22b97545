package command

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/internal/atomicfile"
)

func init() { later(docsCommands) }

// docsCommands registers the file's commands when the command line is built
// (not at start-up: an agent run never builds them).
func docsCommands() {
	register(&cli.Command{
		Name:  "docs",
		Usage: "write every agent's reference page (Markdown and man page), and storhaug(8), into a directory",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: "docs/agents", Usage: "where to write NAME.md, ocf_storhaug_NAME.7 and storhaug.8"},
		},
		Action: func(c *cli.Context) error {
			dir := c.String("dir")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			var page bytes.Buffer
			if err := writeMan(&page, c.App); err != nil {
				return err
			}
			p := filepath.Join(dir, manPage)
			if err := atomicfile.Write(p, page.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, p)
			for _, n := range agents.Names() {
				a := agents.Lookup(n)
				var md, man bytes.Buffer
				if err := a.WriteMarkdown(&md); err != nil {
					return err
				}
				if err := a.WriteMan(&man); err != nil {
					return err
				}
				for _, f := range []struct {
					name string
					data []byte
				}{{a.Name + ".md", md.Bytes()}, {a.ManName() + ".7", man.Bytes()}} {
					p := filepath.Join(dir, f.name)
					if err := atomicfile.Write(p, f.data, 0o644); err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, p)
				}
			}
			return nil
		},
	})
}
