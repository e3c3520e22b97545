package agents_test

// Checks every registered agent's declaration the way Pacemaker,
// ocf-tester and the admin see it: its meta-data in both forms against the
// schemas resource-agents ships, the actions it advertises against those it
// implements, and its reference pages.

import (
	"bytes"
	"context"
	"encoding/xml"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/storhaug/storhaug/agents"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/ocf"
)

type metaData struct {
	Name   string `xml:"name,attr"`
	OCF    string `xml:"version"`
	Params []struct {
		Name       string `xml:"name,attr"`
		Reloadable string `xml:"reloadable,attr"`
	} `xml:"parameters>parameter"`
	Actions []struct {
		Name string `xml:"name,attr"`
	} `xml:"actions>action"`
}

// each runs f for every registered agent, skipping when none is.
func each(t *testing.T, f func(t *testing.T, a *ocf.Agent)) {
	names := agents.Names()
	if len(names) == 0 {
		t.Fatal("no agents registered")
	}
	for _, n := range names {
		a := agents.Lookup(n)
		if a == nil || a.Name != n {
			t.Fatalf("Lookup(%q) = %v", n, a)
		}
		t.Run(n, func(t *testing.T) { f(t, a) })
	}
}

// runMetaData runs the meta-data action as Pacemaker (minor "1") or
// ocf-tester ("") would, with nothing else in the environment.
func runMetaData(t *testing.T, a *ocf.Agent, minor string) ([]byte, metaData) {
	t.Helper()
	env := map[string]string{"HA_LOGFACILITY": "none"}
	if minor != "" {
		env["OCF_RA_VERSION_MAJOR"], env["OCF_RA_VERSION_MINOR"] = "1", minor
	}
	var out, errw bytes.Buffer
	if c := a.Run(context.Background(), []string{"meta-data"}, ocf.MapEnv(env), &out, &errw); c != ocf.Success || errw.Len() > 0 {
		t.Fatalf("meta-data: code %d, stderr %q", c, errw.String())
	}
	var m metaData
	if err := xml.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("meta-data is not well-formed: %v", err)
	}
	return out.Bytes(), m
}

func TestMetaData10ValidatesAgainstDTD(t *testing.T) {
	each(t, func(t *testing.T, a *ocf.Agent) {
		raw, m := runMetaData(t, a, "")
		if m.OCF != "1.0" || m.Name != a.Name {
			t.Errorf("version %q name %q", m.OCF, m.Name)
		}
		if err := ocftest.CheckDTD(t, raw); err != nil {
			t.Error(err)
		}
	})
}

// The 1.1 form is checked against resource-agents' metadata.rng with only
// the optional reloadable attribute added (ocftest.ExtendedRNG derives it
// from the installed file): OCF 1.1 defines that attribute and Pacemaker
// uses it for reload-agent, but resource-agents 4.12's schema lacks it.
func TestMetaData11ValidatesAgainstRNG(t *testing.T) {
	rng := ocftest.ExtendedRNG(t)
	each(t, func(t *testing.T, a *ocf.Agent) {
		raw, m := runMetaData(t, a, "1")
		if m.OCF != "1.1" || m.Name != a.Name {
			t.Errorf("version %q name %q", m.OCF, m.Name)
		}
		if err := ocftest.CheckRNG(t, rng, raw); err != nil {
			t.Error(err)
		}
	})
}

func TestAdvertisedActionsAreImplemented(t *testing.T) {
	each(t, func(t *testing.T, a *ocf.Agent) {
		implemented := map[string]bool{"meta-data": true}
		hidden := map[string]bool{}
		for _, act := range a.Actions {
			if act.Handler != nil {
				implemented[act.Name] = !act.Hidden
				hidden[act.Name] = act.Hidden
			}
		}
		for _, minor := range []string{"", "1"} {
			_, m := runMetaData(t, a, minor)
			advertised := map[string]bool{}
			for _, act := range m.Actions {
				advertised[act.Name] = true
				if !implemented[act.Name] {
					t.Errorf("OCF 1.%s: %s is advertised but has no handler (or is hidden)", minor, act.Name)
				}
			}
			for name, pub := range implemented {
				if pub && !advertised[name] && !(name == "reload-agent" && minor == "") {
					t.Errorf("OCF 1.%s: %s is implemented but not advertised", minor, name)
				}
			}
		}
		for name, h := range hidden {
			if h && slices.Contains(a.ActionNames(), name) {
				t.Errorf("hidden action %s is in the usage", name)
			}
		}
		for _, must := range []string{"start", "stop", "monitor", "validate-all"} {
			if !implemented[must] {
				t.Errorf("no %s action", must)
			}
		}
	})
}

func TestReloadAgentIffReloadableParams(t *testing.T) {
	each(t, func(t *testing.T, a *ocf.Agent) {
		reloadable := false
		for _, p := range a.Params {
			reloadable = reloadable || p.Reloadable
		}
		handler := false
		for _, act := range a.Actions {
			handler = handler || act.Name == "reload-agent" && act.Handler != nil
		}
		_, m := runMetaData(t, a, "1")
		advertised := slices.ContainsFunc(m.Actions, func(x struct {
			Name string `xml:"name,attr"`
		}) bool {
			return x.Name == "reload-agent"
		})
		if advertised != (reloadable && handler) {
			t.Errorf("reload-agent advertised %v; reloadable parameters %v, reload-agent handler %v", advertised, reloadable, handler)
		}
		for _, p := range m.Params {
			if want := a.Param(p.Name).Reloadable; (p.Reloadable == "1") != want {
				t.Errorf("parameter %s: reloadable=%q in 1.1 meta-data, declared %v", p.Name, p.Reloadable, want)
			}
		}
	})
}

// TestParamDeclarations: what meta-data and the docs say about each
// parameter is consistent: described, defaults of the declared type.
func TestParamDeclarations(t *testing.T) {
	each(t, func(t *testing.T, a *ocf.Agent) {
		if strings.TrimSpace(a.ShortDesc) == "" || strings.TrimSpace(a.LongDesc) == "" || a.Version == "" {
			t.Errorf("agent lacks a description or version")
		}
		seen := map[string]bool{}
		for _, p := range a.Params {
			for _, n := range append([]string{p.Name}, p.Aliases...) {
				if seen[n] {
					t.Errorf("parameter name %s declared twice", n)
				}
				seen[n] = true
			}
			if strings.TrimSpace(p.ShortDesc) == "" || strings.TrimSpace(p.LongDesc) == "" {
				t.Errorf("parameter %s lacks a description", p.Name)
			}
			if p.Default == "" {
				continue
			}
			switch p.Type {
			case ocf.Boolean:
				if _, err := ocf.ParseBool(p.Default); err != nil {
					t.Errorf("parameter %s: default: %v", p.Name, err)
				}
			case ocf.Integer:
				if _, err := strconv.Atoi(p.Default); err != nil {
					t.Errorf("parameter %s: default %q is not an integer", p.Name, p.Default)
				}
			case ocf.Select:
				if !slices.Contains(p.Options, p.Default) {
					t.Errorf("parameter %s: default %q is not one of %q", p.Name, p.Default, p.Options)
				}
			}
			if p.Required {
				t.Errorf("parameter %s is required and has a default", p.Name)
			}
		}
	})
}

func TestDocsCoverEveryParamAndAction(t *testing.T) {
	each(t, func(t *testing.T, a *ocf.Agent) {
		var md, man bytes.Buffer
		if err := a.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if err := a.WriteMan(&man); err != nil {
			t.Fatal(err)
		}
		for _, p := range a.Params {
			if !strings.Contains(md.String(), "### `"+p.Name+"`") {
				t.Errorf("markdown lacks parameter %s", p.Name)
			}
			if !strings.Contains(man.String(), "\\fB"+p.Name+"\\fR (") {
				t.Errorf("man page lacks parameter %s", p.Name)
			}
		}
		for _, act := range a.Actions {
			if act.Handler == nil || act.Hidden {
				continue
			}
			if !strings.Contains(md.String(), "| `"+act.Name+"` |") {
				t.Errorf("markdown lacks action %s", act.Name)
			}
			if !strings.Contains(man.String(), ".TP\n\\fB"+act.Name+"\\fR\n") {
				t.Errorf("man page lacks action %s", act.Name)
			}
		}
	})
}
