// Command storhaug is a multi-call binary: called through a symlink named
// after one of its OCF resource agents (as Pacemaker runs
// /usr/lib/ocf/resource.d/storhaug/NAME), it is that agent; called as
// "storhaug agent NAME ACTION" it is that agent too; otherwise it is the
// storhaug command line.
package main

import (
	"os"
	"path/filepath"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/command"
	"github.com/storhaug/storhaug/ocf"
)

func main() {
	if a := agents.Lookup(filepath.Base(os.Args[0])); a != nil {
		ocf.Main(a, os.Args[1:])
	}
	if len(os.Args) >= 3 && os.Args[1] == "agent" {
		if a := agents.Lookup(os.Args[2]); a != nil {
			ocf.Main(a, os.Args[3:])
		}
	}
	os.Exit(command.Run(os.Args))
}
