package setup

import (
	"sort"
	"strings"
)

// Pref is one location preference of a VIP.
type Pref struct {
	Node  string
	Score int
}

// Preferences computes every VIP's location scores: VIP i's home is
// homes[i], then come the other storage nodes in the order it fails over
// to them. The home scores len(storage)*1000, each later choice 1000 less,
// the last 1000: with resource-stickiness=0 a VIP runs on the first of its
// choices that is up, so it returns home when its home comes back, and a
// VIP whose choice is still up never moves.
//
// The orders spread. The VIPs whose first k choices are the same set of
// nodes need their next choice exactly when that set is down: they take
// it, one by one, on the live node that then serves the fewest addresses
// (ties: the node fewer VIPs have as their choice k+1 so far, then the
// next after the home in storage order). One failed node's addresses so
// end up as even as those that stay allow: no node that takes one serves
// more than one address above the least loaded survivor. The failure of
// more nodes is spread too, without that promise. The work is bounded by
// len(storage)*len(homes)^2, not by the number of failure sets.
func Preferences(storage []string, homes []string) [][]Pref {
	n := len(storage)
	idx := make(map[string]int, n)
	for i, s := range storage {
		idx[s] = i
	}
	order := make([][]string, len(homes))
	for v, h := range homes {
		order[v] = []string{h}
	}
	for k := 1; k < n; k++ {
		// How many VIPs have each node as their choice k+1: among the
		// live nodes that serve the fewest, the one fewer VIPs fall back
		// to, so that the failure of more nodes spreads too.
		chosen := map[string]int{}
		// Group the VIPs by the set of their first k choices: a group
		// needs its next choice exactly when that set is down.
		var keys []string
		groups := map[string][]int{}
		for v := range homes {
			key := setKey(order[v])
			if _, ok := groups[key]; !ok {
				keys = append(keys, key)
			}
			groups[key] = append(groups[key], v)
		}
		for _, key := range keys {
			group := groups[key]
			down := map[string]bool{}
			for _, s := range order[group[0]] {
				down[s] = true
			}
			inGroup := map[int]bool{}
			for _, v := range group {
				inGroup[v] = true
			}
			// Where every other VIP runs while exactly these nodes are
			// down: its first choice that is up (it has one, its first k
			// choices being another set of k nodes).
			load := map[string]int{}
			for u := range homes {
				if inGroup[u] {
					continue
				}
				for _, s := range order[u] {
					if !down[s] {
						load[s]++
						break
					}
				}
			}
			for _, v := range group {
				best := ""
				h := idx[homes[v]]
				for j := 1; j < n; j++ {
					c := storage[(h+j)%n]
					if !down[c] && (best == "" || load[c] < load[best] || load[c] == load[best] && chosen[c] < chosen[best]) {
						best = c
					}
				}
				order[v] = append(order[v], best)
				load[best]++
				chosen[best]++
			}
		}
	}
	out := make([][]Pref, len(homes))
	for v, o := range order {
		for k, s := range o {
			out[v] = append(out[v], Pref{Node: s, Score: (n - k) * 1000})
		}
	}
	return out
}

// setKey names a set of nodes independently of their order.
func setKey(nodes []string) string {
	s := append([]string(nil), nodes...)
	sort.Strings(s)
	return strings.Join(s, "\x00")
}
