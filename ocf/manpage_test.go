package ocf

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func docs(t *testing.T, a *Agent) (md, man string) {
	t.Helper()
	var m, n bytes.Buffer
	if err := a.WriteMarkdown(&m); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteMan(&n); err != nil {
		t.Fatal(err)
	}
	return m.String(), n.String()
}

func TestDocsCoverDeclaration(t *testing.T) {
	a := testAgent(&seen{})
	md, man := docs(t, a)
	for _, p := range a.Params {
		if !strings.Contains(md, "### `"+p.Name+"`") {
			t.Errorf("markdown lacks parameter %s", p.Name)
		}
		if !strings.Contains(man, ".TP\n\\fB"+p.Name+"\\fR (") {
			t.Errorf("man page lacks parameter %s", p.Name)
		}
		for _, s := range []string{p.ShortDesc, p.LongDesc, p.Type.String(), p.Deprecated} {
			if !strings.Contains(md, s) || !strings.Contains(man, s) {
				t.Errorf("parameter %s: %q missing", p.Name, s)
			}
		}
	}
	for _, want := range []string{
		"*string, required, unique* — address",
		"*boolean, reloadable* — on?",
		"- Default: `80`",
		"- One of: `fast`, `slow`",
		"- Older names, still accepted: `interface`",
		"- Deprecated: use nic instead",
		"pcs resource create my-dummy ocf:storhaug:Dummy ip=IP",
		"| `monitor` | timeout 20s, interval 11s, role Promoted |",
		"| `reload-agent` | timeout 10s (OCF 1.1 only) |",
		"| `validate-all` | timeout 1500ms |",
		"| `meta-data` | timeout 5s |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	for _, want := range []string{
		".TH \"OCF_STORHAUG_DUMMY\" 7",
		"ocf_storhaug_Dummy \\- A test agent",
		"Default: \\fB80\\fR",
		"One of: fast, slow",
		"Older names, still accepted: interface",
		".TP\n\\fBstart\\fR\ntimeout 30s\n",
		".TP\n\\fBmonitor\\fR\ntimeout 20s, interval 12s, role Unpromoted\n",
	} {
		if !strings.Contains(man, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	for _, act := range a.Actions {
		in := strings.Contains(md, "| `"+act.Name+"` |") && strings.Contains(man, "\\fB"+act.Name+"\\fR")
		if in == act.Hidden {
			t.Errorf("action %s (hidden %v) in docs: %v", act.Name, act.Hidden, in)
		}
	}
}

// TestManPageFormats renders the man page with groff and fails on any
// warning (as man --warnings would show).
func TestManPageFormats(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Fatal("groff is not installed (groff-base; scripts/deps.sh)")
	}
	tricky := testAgent(&seen{})
	tricky.LongDesc = ".starts with a dot\n'and a quote\nback\\slash \"quoted\"\n\nNew paragraph:\n- item one\n- item two\n  indented"
	tricky.Params[0].Default = `.\"not a comment`
	tricky.ShortDesc = `a "quoted" \ thing`
	bare := &Agent{Name: "Bare", Actions: []Action{{Name: "start", Timeout: time.Second, Handler: func(*Request) error { return nil }}}}
	for _, a := range []*Agent{testAgent(&seen{}), tricky, bare} {
		_, man := docs(t, a)
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(man)
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("%s: groff: %v\n%s\n--- page:\n%s", a.Name, err, out, man)
		}
		cmd = exec.Command("groff", "-man", "-Tutf8")
		cmd.Stdin = strings.NewReader(man)
		text, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		plain := stripOverstrike(string(text))
		if a == tricky {
			for _, want := range []string{".starts with a dot", "'and a quote", `back\slash "quoted"`, `.\"not a comment`} {
				if !strings.Contains(plain, want) {
					t.Errorf("rendered page lacks %q:\n%s", want, plain)
				}
			}
		}
	}
}

// stripOverstrike removes the bold/underline escapes of grotty output.
func stripOverstrike(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i := 0; i < len(r); i++ {
		if i+2 < len(r) && r[i+1] == '\b' {
			continue
		}
		if r[i] == '\b' {
			continue
		}
		b.WriteRune(r[i])
	}
	s = b.String()
	// SGR sequences, when grotty emits them.
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], 'm')
		if j < 0 {
			return s
		}
		s = s[:i] + s[i+j+1:]
	}
}
