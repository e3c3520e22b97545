// Package agents holds storhaug's OCF resource agents: for each, its
// declaration (parameters and actions) and thin handlers over the domain
// packages vip, tickle, ctdb and ganesha, one file per agent.
//
// A declaration is built the first time it is looked up, not at start-up:
// Pacemaker runs this binary for every monitor, and each run builds only
// the one agent it is.
package agents

import (
	"github.com/storhaug/storhaug/ocf"
)

// all lists the agents by name, sorted.
var all = [...]struct {
	name  string
	agent func() *ocf.Agent
}{
	{"CTDB", ctdbAgent},
	{"IPaddr3", ipaddr3Agent},
	{"ganesha", ganeshaAgent},
	{"ganesha_trigger", ganeshaTriggerAgent},
}

// Lookup returns the agent called name, or nil.
func Lookup(name string) *ocf.Agent {
	for _, a := range all {
		if a.name == name {
			return a.agent()
		}
	}
	return nil
}

// Names returns the names of all agents, sorted.
func Names() []string {
	names := make([]string, len(all))
	for i, a := range all {
		names[i] = a.name
	}
	return names
}
