package ocf

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/storhaug/storhaug/internal/ocftest"
)

// xmlMeta is meta-data as a consumer (Pacemaker, crm_resource) reads it.
type xmlMeta struct {
	XMLName   xml.Name `xml:"resource-agent"`
	Name      string   `xml:"name,attr"`
	Version   string   `xml:"version,attr"`
	OCF       string   `xml:"version"`
	LongDesc  string   `xml:"longdesc"`
	ShortDesc string   `xml:"shortdesc"`
	Params    []struct {
		Name       string `xml:"name,attr"`
		Required   string `xml:"required,attr"`
		Unique     string `xml:"unique,attr"`
		Reloadable string `xml:"reloadable,attr"`
		LongDesc   string `xml:"longdesc"`
		ShortDesc  string `xml:"shortdesc"`
		Content    struct {
			Type    string `xml:"type,attr"`
			Default string `xml:"default,attr"`
			Options []struct {
				Value string `xml:"value,attr"`
			} `xml:"option"`
		} `xml:"content"`
	} `xml:"parameters>parameter"`
	Actions []struct {
		Name     string `xml:"name,attr"`
		Timeout  string `xml:"timeout,attr"`
		Interval string `xml:"interval,attr"`
		Depth    string `xml:"depth,attr"`
		Role     string `xml:"role,attr"`
	} `xml:"actions>action"`
}

func metaData(t testing.TB, a *Agent, v11 bool) ([]byte, xmlMeta) {
	t.Helper()
	var b bytes.Buffer
	if err := a.WriteMetaData(&b, v11); err != nil {
		t.Fatal(err)
	}
	var m xmlMeta
	if err := xml.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("meta-data is not well-formed: %v\n%s", err, b.Bytes())
	}
	return b.Bytes(), m
}

func TestMetaDataVersionChoice(t *testing.T) {
	for _, tc := range []struct {
		major, minor string // "-" for unset
		v11          bool
	}{
		{"-", "-", false}, // ocf-tester
		{"1", "1", true},  // Pacemaker 2.1
		{"-", "1", true},
		{"1", "0", false},
		{"1", "2", true},
		{"1", " 1 ", true},
		{"1", "x", false},
		{"1", "1.1", false},
		{"2", "1", false},
	} {
		env := map[string]string{}
		if tc.major != "-" {
			env["OCF_RA_VERSION_MAJOR"] = tc.major
		}
		if tc.minor != "-" {
			env["OCF_RA_VERSION_MINOR"] = tc.minor
		}
		r := run(testAgent(&seen{}), env, "meta-data")
		if r.code != Success || r.stderr != "" {
			t.Fatalf("%+v: code %d stderr %q", tc, r.code, r.stderr)
		}
		want, _ := metaData(t, testAgent(&seen{}), tc.v11)
		if r.stdout != string(want) {
			t.Errorf("MAJOR=%q MINOR=%q: got the other version (v11 want %v):\n%s", tc.major, tc.minor, tc.v11, r.stdout)
		}
	}
}

func TestMetaData10(t *testing.T) {
	raw, m := metaData(t, testAgent(&seen{}), false)
	s := string(raw)
	if !strings.HasPrefix(s, "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n") {
		t.Errorf("no DOCTYPE:\n%s", s)
	}
	if m.Name != "Dummy" || m.Version != "1.2" || m.OCF != "1.0" || m.ShortDesc != "A test agent" {
		t.Errorf("header: %+v", m)
	}
	if m.LongDesc != "\nManages nothing at all, <loudly> & well.\nSecond line.\n" {
		t.Errorf("longdesc %q", m.LongDesc)
	}
	for _, bad := range []string{"reloadable", "select", "reload-agent", "keeper", "Promoted", "<option"} {
		if strings.Contains(s, bad) {
			t.Errorf("1.0 meta-data contains %q", bad)
		}
	}
	mode := m.Params[3]
	if mode.Name != "mode" || mode.Content.Type != "string" || !strings.Contains(mode.LongDesc, "One of: fast, slow.") {
		t.Errorf("select in 1.0: %+v", mode)
	}
	var roles []string
	for _, a := range m.Actions {
		roles = append(roles, a.Role)
	}
	if got := strings.Join(roles, ","); got != ",,,Master,Slave,,,,,," {
		t.Errorf("roles %q", got)
	}
	if err := ocftest.CheckDTD(t, raw); err != nil {
		t.Error(err)
	}
}

func TestMetaData11(t *testing.T) {
	raw, m := metaData(t, testAgent(&seen{}), true)
	s := string(raw)
	if strings.Contains(s, "DOCTYPE") || m.OCF != "1.1" {
		t.Errorf("1.1 header:\n%s", s)
	}
	type p struct{ name, req, uniq, rel, typ, def, opts string }
	var got []p
	for _, x := range m.Params {
		var opts []string
		for _, o := range x.Content.Options {
			opts = append(opts, o.Value)
		}
		got = append(got, p{x.Name, x.Required, x.Unique, x.Reloadable, x.Content.Type, x.Content.Default, strings.Join(opts, "|")})
	}
	want := []p{
		{"ip", "1", "1", "", "string", "", ""},
		{"port", "", "", "", "integer", "80", ""},
		{"enabled", "", "", "1", "boolean", "no", ""},
		{"mode", "", "", "", "select", "fast", "fast|slow"},
		{"nic", "", "", "", "string", "", ""},
		{"old", "", "", "", "string", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("params %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("param %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if !strings.Contains(m.Params[4].LongDesc, "older name interface") {
		t.Errorf("alias not documented: %q", m.Params[4].LongDesc)
	}
	if m.Params[5].ShortDesc != "old (deprecated)" || !strings.Contains(m.Params[5].LongDesc, "Deprecated: use nic instead") {
		t.Errorf("deprecation not documented: %+v", m.Params[5])
	}
	var acts []string
	for _, a := range m.Actions {
		acts = append(acts, strings.Join([]string{a.Name, a.Timeout, a.Interval, a.Depth, a.Role}, " "))
	}
	wantActs := []string{
		"start 30s   ", "stop 25s   ", "monitor 20s 10s  ", "monitor 20s 11s  Promoted", "monitor 20s 12s  Unpromoted",
		"promote 10s   ", "demote 10s   ", "notify 5s   ", "reload-agent 10s   ", "validate-all 1500ms   ",
		"status 20s   ", "meta-data 5s   ",
	}
	if strings.Join(acts, "\n") != strings.Join(wantActs, "\n") {
		t.Errorf("actions:\n%s\nwant\n%s", strings.Join(acts, "\n"), strings.Join(wantActs, "\n"))
	}
	if err := ocftest.CheckRNG(t, ocftest.ExtendedRNG(t), raw); err != nil {
		t.Error(err)
	}
}

// TestMetaData11Order checks the element order metadata.rng prescribes
// (RELAX NG groups are ordered): version, longdesc, shortdesc, parameters,
// actions; in a parameter longdesc, shortdesc, content.
func TestMetaData11Order(t *testing.T) {
	raw, _ := metaData(t, testAgent(&seen{}), true)
	d := xml.NewDecoder(bytes.NewReader(raw))
	var path []string
	children := map[string][]string{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if len(path) > 0 {
				parent := path[len(path)-1]
				if c := children[parent]; len(c) == 0 || c[len(c)-1] != e.Name.Local {
					children[parent] = append(c, e.Name.Local)
				}
			}
			path = append(path, e.Name.Local)
		case xml.EndElement:
			path = path[:len(path)-1]
		}
	}
	for parent, want := range map[string]string{
		"resource-agent": "version longdesc shortdesc parameters actions",
		"parameters":     "parameter",
		"parameter":      "longdesc shortdesc content longdesc shortdesc content longdesc shortdesc content longdesc shortdesc content longdesc shortdesc content longdesc shortdesc content",
		"content":        "option",
		"actions":        "action",
	} {
		if got := strings.Join(children[parent], " "); got != want {
			t.Errorf("%s children: %s\nwant %s", parent, got, want)
		}
	}
}

func TestMetaDataEscaping(t *testing.T) {
	a := &Agent{
		Name: `We"ird`, Version: "1<2", ShortDesc: "a & b < c > d \"q\"",
		LongDesc: "line1\n\tline2\r\nbell\x07 nul\x00 bad\xff ok ü 𝄞",
		Params: []Param{{Name: "p", Default: "x\"y\n&z", ShortDesc: "s", LongDesc: "l",
			Type: Select, Options: []string{`<a>`, `b"`}}},
		Actions: []Action{{Name: "start", Timeout: time.Second, Handler: func(*Request) error { return nil }}},
	}
	for _, v11 := range []bool{false, true} {
		_, m := metaData(t, a, v11)
		if m.Name != `We"ird` || m.Version != "1<2" || m.ShortDesc != `a & b < c > d "q"` {
			t.Errorf("v11=%v: attributes/text not round-tripped: %+v", v11, m)
		}
		if want := "\nline1\n\tline2\r\nbell\uFFFD nul\uFFFD bad\uFFFD ok ü 𝄞\n"; m.LongDesc != want {
			t.Errorf("v11=%v: longdesc %q, want %q", v11, m.LongDesc, want)
		}
		if m.Params[0].Content.Default != "x\"y\n&z" {
			t.Errorf("v11=%v: default %q", v11, m.Params[0].Content.Default)
		}
		if v11 && (m.Params[0].Content.Options[0].Value != "<a>" || m.Params[0].Content.Options[1].Value != `b"`) {
			t.Errorf("options %+v", m.Params[0].Content.Options)
		}
	}
}

func TestMetaDataNoParams(t *testing.T) {
	a := &Agent{Name: "Bare", Version: "1", ShortDesc: "s", LongDesc: "l",
		Actions: []Action{{Name: "start", Timeout: time.Second, Handler: func(*Request) error { return nil }}}}
	raw, m := metaData(t, a, false)
	if len(m.Params) != 0 || len(m.Actions) != 2 {
		t.Errorf("%+v", m)
	}
	if err := ocftest.CheckDTD(t, raw); err != nil {
		t.Error(err)
	}
}

func TestMetaDataDeclaredMetaDataAction(t *testing.T) {
	a := testAgent(&seen{})
	a.Actions = append(a.Actions, Action{Name: "meta-data", Timeout: 7 * time.Second})
	_, m := metaData(t, a, true)
	n := 0
	for _, act := range m.Actions {
		if act.Name == "meta-data" {
			n++
			if act.Timeout != "7s" {
				t.Errorf("meta-data timeout %s", act.Timeout)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d meta-data actions", n)
	}
}

// FuzzMetaData: whatever text a declaration holds, both forms of meta-data
// stay well-formed XML that reads back as the declaration says.
func FuzzMetaData(f *testing.F) {
	f.Add("Dummy", "1.0", "short", "long\ntext", "ip", "198.51.100.1", "a")
	f.Add(`<&>"'`, "]]>", "\x00\x01", "\xff\xfe", "p q", "\r\n", "")
	f.Fuzz(func(t *testing.T, name, version, short, long, param, def, opt string) {
		a := &Agent{Name: name, Version: version, ShortDesc: short, LongDesc: long,
			Params:  []Param{{Name: param, Default: def, Type: Select, Options: []string{opt}, ShortDesc: short, LongDesc: long, Aliases: []string{opt}, Deprecated: def}},
			Actions: []Action{{Name: "start", Timeout: time.Second, Role: opt, Handler: func(*Request) error { return nil }}},
		}
		for _, v11 := range []bool{false, true} {
			var b bytes.Buffer
			if err := a.WriteMetaData(&b, v11); err != nil {
				t.Fatal(err)
			}
			var m xmlMeta
			if err := xml.Unmarshal(b.Bytes(), &m); err != nil {
				t.Fatalf("v11=%v: not well-formed: %v\n%s", v11, err, b.Bytes())
			}
			if len(m.Params) != 1 || len(m.Actions) != 2 {
				t.Fatalf("v11=%v: %d params, %d actions", v11, len(m.Params), len(m.Actions))
			}
			if m.Name != clean(name) || m.Params[0].Name != clean(param) {
				t.Fatalf("v11=%v: name %q param %q, want %q %q", v11, m.Name, m.Params[0].Name, clean(name), clean(param))
			}
		}
	})
}

// clean is what a string reads back as from meta-data: trimmed, with what
// XML cannot carry replaced, and line ends normalised as XML parsers do.
func clean(s string) string {
	var b strings.Builder
	s = strings.TrimSpace(s)
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if !xmlChar(r) || r == utf8.RuneError && n == 1 {
			r = '\uFFFD'
		}
		b.WriteRune(r)
		s = s[n:]
	}
	return b.String()
}
