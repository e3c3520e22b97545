package scenario

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// BenchResult is one fault and protocol over the bench's repetitions: the
// bench's JSON result object.
type BenchResult struct {
	Fault    string     `json:"fault"`
	Proto    string     `json:"proto"`
	Stack    string     `json:"stack"`
	Tunables string     `json:"tunables,omitempty"` // "same": every stack with the same CTDB tunables; "": as shipped
	OutageS  []float64  `json:"outage_s"`
	NewOpenS []float64  `json:"newopen_s"`
	DetectS  []*float64 `json:"detect_s,omitempty"` // per repetition; null where no line was found
	FenceS   []*float64 `json:"fence_s,omitempty"`  // absent when no repetition was fenced
	Acked    int        `json:"acked"`
	Lost     int        `json:"lost"`
	Corrupt  int        `json:"corrupt"`
	Locks    string     `json:"locks"`
	Failed   bool       `json:"failed,omitempty"`
}

// BenchReport is the bench's last line.
type BenchReport struct {
	Fencing bool          `json:"fencing"`
	Clients string        `json:"clients"`
	TokenS  float64       `json:"token_s"`
	NFS     string        `json:"nfs,omitempty"` // "v4": ganesha served NFSv4 only (NLM off)
	Results []BenchResult `json:"results"`
}

// lockRank orders lock outcomes from best to worst: a summary over
// repetitions keeps the worst.
var lockRank = map[string]int{"kept": 0, "reported-lost": 1, "unknown": 2, "silently-lost": 3}

func rank(locks string) int {
	if r, ok := lockRank[locks]; ok {
		return r
	}
	return lockRank["unknown"]
}

// Aggregate folds the repetitions' outcomes into one result per stack,
// fault and protocol, in the order they first appear. A repetition that
// did not recover counts at limit seconds and marks the result failed.
func Aggregate(outcomes []*Outcome, limit float64) []BenchResult {
	var out []BenchResult
	idx := map[string]int{}
	for _, o := range outcomes {
		for _, r := range o.Results {
			k := o.Stack + "\x00" + o.Fault + "\x00" + r.Proto
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				out = append(out, BenchResult{Fault: o.Fault, Proto: r.Proto, Stack: o.Stack, Locks: "kept"})
			}
			b := &out[i]
			outage, newopen := r.OutageS, r.NewOpenS
			if r.Failed || outage < 0 || newopen < 0 || outage > limit || newopen > limit {
				b.Failed = true
			}
			if r.Failed || outage < 0 || outage > limit {
				outage = limit
			}
			if r.Failed || newopen < 0 || newopen > limit {
				newopen = limit
			}
			b.OutageS = append(b.OutageS, ms(outage))
			b.NewOpenS = append(b.NewOpenS, ms(newopen))
			b.DetectS = append(b.DetectS, msp(o.DetectS))
			b.FenceS = append(b.FenceS, msp(o.FenceS))
			b.Acked += r.Acked
			b.Lost += r.Lost
			b.Corrupt += r.Corrupt
			if rank(r.Locks) > rank(b.Locks) {
				b.Locks = r.Locks
			}
		}
	}
	for i := range out {
		if allNil(out[i].FenceS) {
			out[i].FenceS = nil
		}
		if allNil(out[i].DetectS) {
			out[i].DetectS = nil
		}
	}
	return out
}

// ms rounds seconds to the millisecond (the logs' resolution).
func ms(x float64) float64 { return math.Round(x*1000) / 1000 }

func msp(x *float64) *float64 {
	if x == nil {
		return nil
	}
	r := ms(*x)
	return &r
}

func allNil(xs []*float64) bool {
	for _, x := range xs {
		if x != nil {
			return false
		}
	}
	return true
}

// Median is the middle value (the mean of the two middle ones for an even
// count); NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Max is the largest value; NaN for none.
func Max(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = math.Max(m, x)
	}
	return m
}

func present(xs []*float64) []float64 {
	var out []float64
	for _, x := range xs {
		if x != nil {
			out = append(out, *x)
		}
	}
	return out
}

// medMax prints "median/max" with one decimal, "-" for no value.
func medMax(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f/%.1f", Median(xs), Max(xs))
}

// Table prints the results for a person: per fault and protocol, both
// outages, detection and fencing (median/max over the repetitions, in
// seconds), acknowledged, lost, corrupt, the lock outcome.
func Table(rs []BenchResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-7s %-15s %2s %11s %11s %11s %11s %7s %5s %7s %-14s %s\n",
		"fault", "proto", "stack", "R", "outage_s", "newopen_s", "detect_s", "fence_s", "acked", "lost", "corrupt", "locks", "failed")
	for _, r := range rs {
		failed := ""
		if r.Failed {
			failed = "FAILED"
		}
		fmt.Fprintf(&b, "%-12s %-7s %-15s %2d %11s %11s %11s %11s %7d %5d %7d %-14s %s\n",
			r.Fault, r.Proto, r.Stack, len(r.OutageS), medMax(r.OutageS), medMax(r.NewOpenS),
			medMax(present(r.DetectS)), medMax(present(r.FenceS)), r.Acked, r.Lost, r.Corrupt, r.Locks, failed)
	}
	b.WriteString("(seconds from the fault, median/max over R repetitions)\n")
	return b.String()
}

// JSONLine is the report as one line of JSON.
func JSONLine(rep BenchReport) (string, error) {
	if rep.Results == nil {
		rep.Results = []BenchResult{}
	}
	b, err := json.Marshal(rep)
	return string(b), err
}

// The stacks the bench knows, in the order it runs them: the CTDB-native
// stack last (it leaves ctdbd started outside Pacemaker, enabled in the lab).
var Stacks = []string{"storhaug", "resource-agents", "ctdb"}

// ParseStacks reads the bench's comma-separated list of stacks ("" is
// storhaug alone) and returns them in the order the bench runs them.
func ParseStacks(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return []string{Stacks[0]}, nil
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(Stacks, f) {
			return nil, fmt.Errorf("-stacks: unknown stack %q (known: %s)", f, strings.Join(Stacks, ","))
		}
		seen[f] = true
	}
	var out []string
	for _, st := range Stacks {
		if seen[st] {
			out = append(out, st)
		}
	}
	return out, nil
}

// ParseTunables reads the bench's -tunables: "" (or "shipped") is every
// stack with its own defaults, "same" every stack with the same CTDB
// tunables; it returns the results' "tunables" value.
func ParseTunables(s string) (string, error) {
	switch s {
	case "", "shipped":
		return "", nil
	case "same":
		return "same", nil
	}
	return "", fmt.Errorf("-tunables: %q: want same or shipped", s)
}

// Ratio is how many times longer an anchor stack's median outage is than
// the base stack's, for one fault and protocol: SMB's outage on an open
// file, NFS's new-open outage.
type Ratio struct {
	Fault, Proto, Anchor string
	Measure              string // outage_s (SMB) or newopen_s (NFS)
	Base, Other          float64
	Times                float64 // Other / Base; +Inf for a base of 0
}

// Ratios compares base (storhaug) with every other stack in rs, per fault
// and protocol both measured, in rs's order.
func Ratios(rs []BenchResult, base string) []Ratio {
	type key struct{ fault, proto, tunables string }
	bases := map[key]BenchResult{}
	for _, r := range rs {
		if r.Stack == base {
			bases[key{r.Fault, r.Proto, r.Tunables}] = r
		}
	}
	var out []Ratio
	for _, r := range rs {
		b, ok := bases[key{r.Fault, r.Proto, r.Tunables}]
		if r.Stack == base || !ok {
			continue
		}
		x := Ratio{Fault: r.Fault, Proto: r.Proto, Anchor: r.Stack, Measure: "newopen_s",
			Base: Median(b.NewOpenS), Other: Median(r.NewOpenS)}
		if strings.HasPrefix(r.Proto, "smb") {
			x.Measure, x.Base, x.Other = "outage_s", Median(b.OutageS), Median(r.OutageS)
		}
		x.Times = x.Other / x.Base
		if x.Base == 0 {
			x.Times = math.Inf(1)
		}
		out = append(out, x)
	}
	return out
}

// RatioTable prints Ratios for a person.
func RatioTable(xs []Ratio, base string) string {
	if len(xs) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-7s %-16s %-9s %9s %9s %8s\n", "fault", "proto", "anchor", "measure", base, "anchor", "ratio")
	for _, x := range xs {
		fmt.Fprintf(&b, "%-12s %-7s %-16s %-9s %9.1f %9.1f %7.1fx\n", x.Fault, x.Proto, x.Anchor, x.Measure, x.Base, x.Other, x.Times)
	}
	fmt.Fprintf(&b, "(medians in seconds; ratio: how many times longer the anchor's outage is than %s's)\n", base)
	return b.String()
}
