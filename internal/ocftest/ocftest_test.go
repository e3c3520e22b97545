package ocftest_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storhaug/storhaug/install"
	"github.com/storhaug/storhaug/internal/nstest"
	"github.com/storhaug/storhaug/internal/ocftest"
	"github.com/storhaug/storhaug/ocf"
)

// The test binary doubles as a small agent, Dummy, when run through a link
// of that name: it keeps its state in a file under HA_RSCTMP. With
// broken=true its monitor always says running, which ocf-tester must catch.
var dummy = &ocf.Agent{
	Name: "Dummy", Version: "1.0", ShortDesc: "test agent", LongDesc: "A state file.",
	Params: []ocf.Param{
		{Name: "broken", Type: ocf.Boolean, Default: "false", ShortDesc: "misbehave", LongDesc: "Monitor always says running."},
	},
	Actions: []ocf.Action{
		{Name: "start", Timeout: 20 * time.Second, Handler: func(r *ocf.Request) error {
			return os.WriteFile(dummyState(r), nil, 0o644)
		}},
		{Name: "stop", Timeout: 20 * time.Second, Handler: func(r *ocf.Request) error {
			if err := os.Remove(dummyState(r)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		}},
		{Name: "monitor", Timeout: 20 * time.Second, Interval: 10 * time.Second, Handler: func(r *ocf.Request) error {
			if _, err := os.Stat(dummyState(r)); err != nil && !r.Bool("broken") {
				return ocf.Exit(ocf.NotRunning)
			}
			return nil
		}},
		{Name: "validate-all", Timeout: 20 * time.Second, Handler: func(*ocf.Request) error { return nil }},
	},
}

func dummyState(r *ocf.Request) string {
	return filepath.Join(r.StateDir(), "Dummy-"+r.Instance)
}

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "Dummy" {
		ocf.Main(dummy, os.Args[1:])
	}
	ocftest.Main(m)
}

// installDummy installs this test binary as the agent Dummy in a new OCF
// root, and returns the agent's path and a state directory for it.
func installDummy(t *testing.T) (agent, state string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(dir, "ocftest.test")
	copyFile(t, self, bin)
	root := filepath.Join(dir, "ocf")
	if _, err := install.Link(root, bin, []string{"Dummy"}); err != nil {
		t.Fatal(err)
	}
	state = filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	return ocftest.AgentPath(root, "Dummy"), state
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOCFTesterPassesAGoodAgent(t *testing.T) {
	agent, state := installDummy(t)
	ocftest.Tester{Env: []string{"HA_RSCTMP=" + state}, Timeout: time.Minute}.Pass(t, agent)
}

func TestOCFTesterCatchesABadAgent(t *testing.T) {
	agent, state := installDummy(t)
	out, err := ocftest.Tester{
		Params:  map[string]string{"broken": "yes"},
		Env:     []string{"HA_RSCTMP=" + state},
		Timeout: time.Minute,
	}.Run(agent)
	if err == nil {
		t.Fatalf("a monitor that always succeeds passed ocf-tester:\n%s", out)
	}
	if !strings.Contains(out, "Monitoring a stopped resource should return 7") {
		t.Errorf("ocf-tester output does not explain the failure:\n%s", out)
	}
	if !strings.Contains(err.Error(), "ocf-tester -v -n ocftest-Dummy -o broken=yes "+agent) {
		t.Errorf("error does not show the command: %v", err)
	}
}

func TestTesterCommand(t *testing.T) {
	for _, tc := range []struct {
		o    ocftest.Tester
		want string
	}{
		{ocftest.Tester{}, "/usr/sbin/ocf-tester -v -n ocftest-NAME /r/resource.d/storhaug/NAME"},
		{ocftest.Tester{Instance: "vip", Params: map[string]string{"nic": "eth0", "ip": "198.51.100.5"}},
			"/usr/sbin/ocf-tester -v -n vip -o ip=198.51.100.5 -o nic=eth0 /r/resource.d/storhaug/NAME"},
		{ocftest.Tester{Netns: "shx1"}, "nsenter --net=/run/netns/shx1 -- /usr/sbin/ocf-tester -v -n ocftest-NAME /r/resource.d/storhaug/NAME"},
		{ocftest.Tester{Netns: "/proc/1/ns/net"}, "nsenter --net=/proc/1/ns/net -- /usr/sbin/ocf-tester -v -n ocftest-NAME /r/resource.d/storhaug/NAME"},
		{ocftest.Tester{Netns: "n1", Wrap: func(argv []string) []string { return append([]string{"lab", "exec", "n1"}, argv...) }},
			"lab exec n1 nsenter --net=/run/netns/n1 -- /usr/sbin/ocf-tester -v -n ocftest-NAME /r/resource.d/storhaug/NAME"},
	} {
		if got := strings.Join(tc.o.Command(ocftest.AgentPath("/r", "NAME")), " "); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestBinaryAndInstall(t *testing.T) {
	bin := ocftest.Binary(t)
	if again := ocftest.Binary(t); again != bin {
		t.Errorf("second Binary call built again: %s, %s", bin, again)
	}
	names := ocftest.Agents(t, bin)
	root := ocftest.Install(t, bin)
	for _, n := range names {
		p := ocftest.AgentPath(root, n)
		if target, err := os.Readlink(p); err != nil || target != bin {
			t.Errorf("%s -> %q, %v; want %s", p, target, err, bin)
		}
	}
	ents, _ := os.ReadDir(install.Dir(root))
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, names) && !(len(got) == 0 && len(names) == 0) {
		t.Errorf("installed %v, want %v", got, names)
	}
	for _, p := range []string{filepath.Dir(bin), bin, root, install.Dir(root)} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm()&0o005 != 0o005 {
			t.Errorf("%s is not open to others (ocf-tester runs meta-data as nobody): %v %v", p, st.Mode(), err)
		}
	}
}

// TestOCFTesterIPaddr3InNamespace runs ocf-tester against the real
// IPaddr3, built and installed by the helpers, inside a namespace.
func TestOCFTesterIPaddr3InNamespace(t *testing.T) {
	nstest.Skip(t)
	bin := ocftest.Binary(t)
	if !slices.Contains(ocftest.Agents(t, bin), "IPaddr3") {
		t.Fatal("IPaddr3 is not built in")
	}
	root := ocftest.Install(t, bin)
	h := nstest.New(t).AddHost("198.51.100.1/24")
	state := t.TempDir()
	os.Chmod(state, 0o755)
	ocftest.Tester{
		Instance: fmt.Sprintf("vip-%d", os.Getpid()),
		Params:   map[string]string{"ip": "198.51.100.77", "cidr_netmask": "24", "nic": h.Link},
		Netns:    h.Name,
		Env:      []string{"HA_RSCTMP=" + state},
		Timeout:  2 * time.Minute,
	}.Pass(t, ocftest.AgentPath(root, "IPaddr3"))
	// Nothing left behind: the address is gone from the namespace.
	out, err := h.Command("ip", "-o", "addr", "show").CombinedOutput()
	if err != nil || strings.Contains(string(out), "198.51.100.77") {
		t.Errorf("after ocf-tester: %v\n%s", err, out)
	}
}

const valid10 = `<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="X" version="1">
<version>1.0</version>
<longdesc lang="en">l</longdesc>
<shortdesc lang="en">s</shortdesc>
<parameters>
<parameter name="p" PARAMATTR>
<longdesc lang="en">l</longdesc>
<shortdesc lang="en">s</shortdesc>
<content type="string"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
</actions>
</resource-agent>
`

func TestSchemas(t *testing.T) {
	v10 := func(attr string) []byte { return []byte(strings.Replace(valid10, "PARAMATTR", attr, 1)) }
	v11 := func(attr string) []byte {
		s := strings.Replace(string(v10(attr)), "<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n", "", 1)
		return []byte(strings.Replace(s, "<version>1.0", "<version>1.1", 1))
	}
	ext := ocftest.ExtendedRNG(t)
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"1.0 valid", ocftest.CheckDTD(t, v10(`unique="1"`)), true},
		{"1.0 reloadable", ocftest.CheckDTD(t, v10(`reloadable="1"`)), false},
		{"1.0 without DOCTYPE", ocftest.CheckDTD(t, v11(``)), false},
		{"1.0 not well-formed", ocftest.CheckDTD(t, []byte("<resource-agent>")), false},
		{"1.1 valid", ocftest.CheckRNG(t, ext, v11(`required="1"`)), true},
		{"1.1 reloadable, extended schema", ocftest.CheckRNG(t, ext, v11(`reloadable="1"`)), true},
		{"1.1 reloadable, installed schema", ocftest.CheckRNG(t, ocftest.RNGPath, v11(`reloadable="1"`)), false},
		{"1.1 bad reloadable value", ocftest.CheckRNG(t, ext, v11(`reloadable="yes"`)), false},
		{"1.1 other unknown attribute", ocftest.CheckRNG(t, ext, v11(`unique-group="g"`)), false},
		{"1.1 installed schema, plain", ocftest.CheckRNG(t, ocftest.RNGPath, v11(``)), true},
	} {
		if (tc.err == nil) != tc.ok {
			t.Errorf("%s: valid %v, want %v: %v", tc.name, tc.err == nil, tc.ok, tc.err)
		}
	}
	var ve *ocftest.ValidationError
	if err := ocftest.CheckDTD(t, v10(`reloadable="1"`)); !errors.As(err, &ve) || !strings.Contains(ve.Output, "reloadable") {
		t.Errorf("the error does not carry xmllint's complaint: %v", err)
	}
}
