// Package agents holds storhaug's OCF resource agents: for each, its
// declaration (parameters and actions) and thin handlers over the domain
// packages vip, tickle, ctdb and ganesha. Each agent registers itself from
// its own file.
package agents

import (
	"sort"

	"github.com/storhaug/storhaug/ocf"
)

var registry = map[string]*ocf.Agent{}

func register(a *ocf.Agent) {
	if _, dup := registry[a.Name]; dup {
		panic("agents: " + a.Name + " registered twice")
	}
	registry[a.Name] = a
}

// Lookup returns the agent called name, or nil.
func Lookup(name string) *ocf.Agent { return registry[name] }

// Names returns the names of all agents, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
