package ocf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/syslog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// seen records what the last handler call saw.
type seen struct {
	r        *Request
	deadline time.Time
	called   string
}

// testAgent declares an agent with one parameter of each kind and the
// usual actions; its handlers record the request in s.
func testAgent(s *seen) *Agent {
	rec := func(r *Request) error {
		s.r, s.called = r, r.Action
		s.deadline, _ = r.Context().Deadline()
		return nil
	}
	return &Agent{
		Name:      "Dummy",
		Version:   "1.2",
		ShortDesc: "A test agent",
		LongDesc:  "Manages nothing at all, <loudly> & well.\nSecond line.",
		Params: []Param{
			{Name: "ip", Required: true, Unique: true, ShortDesc: "address", LongDesc: "The address to manage."},
			{Name: "port", Type: Integer, Default: "80", ShortDesc: "port", LongDesc: "The port."},
			{Name: "enabled", Type: Boolean, Default: "no", Reloadable: true, ShortDesc: "on?", LongDesc: "Whether it is on."},
			{Name: "mode", Type: Select, Options: []string{"fast", "slow"}, Default: "fast", ShortDesc: "mode", LongDesc: "How."},
			{Name: "nic", Aliases: []string{"interface"}, ShortDesc: "interface", LongDesc: "The interface."},
			{Name: "old", Deprecated: "use nic instead", ShortDesc: "old", LongDesc: "An old parameter."},
		},
		Actions: []Action{
			{Name: "start", Timeout: 30 * time.Second, Handler: rec},
			{Name: "stop", Timeout: 25 * time.Second, Handler: rec},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 10 * time.Second, Depth: 0, Handler: rec},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 11 * time.Second, Role: "Promoted"},
			{Name: "monitor", Timeout: 20 * time.Second, Interval: 12 * time.Second, Role: "Unpromoted"},
			{Name: "promote", Timeout: 10 * time.Second, Handler: rec},
			{Name: "demote", Timeout: 10 * time.Second, Handler: rec},
			{Name: "notify", Timeout: 5 * time.Second, Handler: rec},
			{Name: "reload-agent", Timeout: 10 * time.Second, Handler: rec},
			{Name: "validate-all", Timeout: 1500 * time.Millisecond, Handler: rec},
			{Name: "status", Handler: rec}, // no declared timeout
			{Name: "keeper", Hidden: true, Handler: rec},
		},
	}
}

type result struct {
	code           Code
	stdout, stderr string
}

// lastLine is the last line of s.
func (r result) lastLine() string {
	s := strings.TrimRight(r.stderr, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func run(a *Agent, env map[string]string, args ...string) result {
	var out, errw bytes.Buffer
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["HA_LOGFACILITY"]; !ok {
		env["HA_LOGFACILITY"] = "none" // keep tests out of the host's syslog
	}
	code := a.Run(context.Background(), args, MapEnv(env), &out, &errw)
	return result{code, out.String(), errw.String()}
}

var good = map[string]string{"OCF_RESKEY_ip": "198.51.100.7"}

func with(m map[string]string, kv ...string) map[string]string {
	n := map[string]string{}
	for k, v := range m {
		n[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		n[kv[i]] = kv[i+1]
	}
	return n
}

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		code       Code
		called     string // the handler that must have run
		stdout     string // must contain
		stderr     string // must contain
		noStdout   bool
		exitReason string // the last line of stderr, exactly
	}{
		{name: "no action", args: nil, code: ErrArgs, stderr: "usage: Dummy {", noStdout: true},
		{name: "empty action", args: []string{""}, code: ErrArgs, stderr: "usage: Dummy {", noStdout: true},
		{name: "unknown", args: []string{"frobnicate"}, env: good, code: ErrUnimplemented,
			exitReason: `ocf-exit-reason:action "frobnicate" is not implemented by Dummy`},
		{name: "undeclared action", args: []string{"migrate_to"}, env: good, code: ErrUnimplemented},
		{name: "usage", args: []string{"usage"}, code: Success, stdout: "usage: Dummy {"},
		{name: "help", args: []string{"help"}, code: Success, stdout: "usage: Dummy {"},
		{name: "meta-data", args: []string{"meta-data"}, code: Success, stdout: "<resource-agent name=\"Dummy\""},
		{name: "meta-data needs no params", args: []string{"meta-data"}, env: map[string]string{}, code: Success, stdout: "<version>1.0</version>"},
		{name: "start", args: []string{"start"}, env: good, code: Success, called: "start", noStdout: true},
		{name: "extra args ignored", args: []string{"stop", "x", "y"}, env: good, code: Success, called: "stop"},
		{name: "hidden action runs", args: []string{"keeper"}, env: good, code: Success, called: "keeper"},
		{name: "missing required", args: []string{"start"}, code: ErrConfigured,
			exitReason: "ocf-exit-reason:parameter ip is required"},
		{name: "missing required, validate-all", args: []string{"validate-all"}, code: ErrConfigured,
			exitReason: "ocf-exit-reason:parameter ip is required"},
		{name: "missing required, monitor", args: []string{"monitor"}, env: map[string]string{"OCF_RESKEY_CRM_meta_interval": "10000"},
			code: ErrConfigured, exitReason: "ocf-exit-reason:parameter ip is required"},
		{name: "missing required, stop", args: []string{"stop"}, code: Success,
			stderr: "WARNING: parameter ip is required: nothing can have been started with these parameters: nothing to stop"},
		{name: "bad value, stop", args: []string{"stop"}, env: with(good, "OCF_RESKEY_port", "x"), code: Success, stderr: "WARNING: parameter port"},
		{name: "missing required, probe", args: []string{"monitor"}, code: NotRunning,
			stderr: "WARNING: parameter ip is required: nothing can be running with these parameters"},
		{name: "bad value, probe", args: []string{"monitor"}, env: with(good, "OCF_RESKEY_enabled", "maybe", "OCF_RESKEY_CRM_meta_interval", "0"), code: NotRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s seen
			r := run(testAgent(&s), tc.env, tc.args...)
			if r.code != tc.code {
				t.Fatalf("code %d (%s), want %d (%s); stderr:\n%s", r.code, r.code, tc.code, tc.code, r.stderr)
			}
			if s.called != tc.called {
				t.Errorf("handler %q ran, want %q", s.called, tc.called)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tc.stdout)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
			if tc.noStdout && r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if tc.exitReason != "" && r.lastLine() != tc.exitReason {
				t.Errorf("last stderr line %q, want %q", r.lastLine(), tc.exitReason)
			}
		})
	}
}

func TestUsageListsAdvertisedActionsOnly(t *testing.T) {
	r := run(testAgent(&seen{}), nil, "usage")
	want := "usage: Dummy {demote|meta-data|monitor|notify|promote|reload-agent|start|status|stop|usage|validate-all}\n"
	if r.stdout != want {
		t.Errorf("usage:\n%q\nwant\n%q", r.stdout, want)
	}
}

func TestRunNilEnv(t *testing.T) {
	var out bytes.Buffer
	if c := testAgent(&seen{}).Run(context.Background(), []string{"meta-data"}, nil, &out, &bytes.Buffer{}); c != Success || out.Len() == 0 {
		t.Fatalf("meta-data with nil env: code %d, %d bytes", c, out.Len())
	}
}

func TestParams(t *testing.T) {
	type want struct {
		code   Code
		reason string // exit reason (after the prefix) for failures
		check  func(t *testing.T, r *Request)
	}
	str := func(name, v string, set bool) func(*testing.T, *Request) {
		return func(t *testing.T, r *Request) {
			if got := r.String(name); got != v {
				t.Errorf("String(%q) = %q, want %q", name, got, v)
			}
			if r.IsSet(name) != set {
				t.Errorf("IsSet(%q) = %v, want %v", name, r.IsSet(name), set)
			}
		}
	}
	boolean := func(v bool) func(*testing.T, *Request) {
		return func(t *testing.T, r *Request) {
			if r.Bool("enabled") != v {
				t.Errorf("Bool(enabled) = %v, want %v", r.Bool("enabled"), v)
			}
		}
	}
	integer := func(v int) func(*testing.T, *Request) {
		return func(t *testing.T, r *Request) {
			if r.Int("port") != v {
				t.Errorf("Int(port) = %d, want %d", r.Int("port"), v)
			}
		}
	}
	ok := func(f func(*testing.T, *Request)) want { return want{code: Success, check: f} }
	bad := func(reason string) want { return want{code: ErrConfigured, reason: reason} }
	for _, tc := range []struct {
		name string
		env  []string
		want want
	}{
		{"defaults", nil, ok(func(t *testing.T, r *Request) {
			str("port", "80", false)(t, r)
			integer(80)(t, r)
			boolean(false)(t, r)
			str("mode", "fast", false)(t, r)
			str("nic", "", false)(t, r)
		})},
		{"ip trimmed", []string{"OCF_RESKEY_ip", "  198.51.100.9 \n"}, ok(str("ip", "198.51.100.9", true))},
		{"required blank", []string{"OCF_RESKEY_ip", "   "}, bad("parameter ip is required")},
		{"bool yes", []string{"OCF_RESKEY_enabled", "yes"}, ok(boolean(true))},
		{"bool YES", []string{"OCF_RESKEY_enabled", "YES"}, ok(boolean(true))},
		{"bool True", []string{"OCF_RESKEY_enabled", "True"}, ok(boolean(true))},
		{"bool oN", []string{"OCF_RESKEY_enabled", "oN"}, ok(boolean(true))},
		{"bool 1", []string{"OCF_RESKEY_enabled", "1"}, ok(boolean(true))},
		{"bool no", []string{"OCF_RESKEY_enabled", "no"}, ok(boolean(false))},
		{"bool FALSE", []string{"OCF_RESKEY_enabled", "FALSE"}, ok(boolean(false))},
		{"bool Off", []string{"OCF_RESKEY_enabled", "Off"}, ok(boolean(false))},
		{"bool 0", []string{"OCF_RESKEY_enabled", "0"}, ok(boolean(false))},
		{"bool empty is default", []string{"OCF_RESKEY_enabled", ""}, ok(boolean(false))},
		{"bool bad", []string{"OCF_RESKEY_enabled", "maybe"}, bad(`parameter enabled: "maybe" is not a boolean (use yes or no)`)},
		{"bool 2", []string{"OCF_RESKEY_enabled", "2"}, bad(`parameter enabled: "2" is not a boolean (use yes or no)`)},
		{"int", []string{"OCF_RESKEY_port", "8080"}, ok(integer(8080))},
		{"int spaces", []string{"OCF_RESKEY_port", " 42 "}, ok(integer(42))},
		{"int negative", []string{"OCF_RESKEY_port", "-1"}, ok(integer(-1))},
		{"int bad", []string{"OCF_RESKEY_port", "http"}, bad(`parameter port: "http" is not an integer`)},
		{"int float", []string{"OCF_RESKEY_port", "1.5"}, bad(`parameter port: "1.5" is not an integer`)},
		{"int overflow", []string{"OCF_RESKEY_port", "99999999999999999999"}, bad(`parameter port: "99999999999999999999" is not an integer`)},
		{"select", []string{"OCF_RESKEY_mode", "slow"}, ok(str("mode", "slow", true))},
		{"select bad", []string{"OCF_RESKEY_mode", "medium"}, bad(`parameter mode: "medium" is not one of fast, slow`)},
		{"select is case sensitive", []string{"OCF_RESKEY_mode", "FAST"}, bad(`parameter mode: "FAST" is not one of fast, slow`)},
		{"alias", []string{"OCF_RESKEY_interface", "eth1"}, ok(str("nic", "eth1", true))},
		{"name wins over alias", []string{"OCF_RESKEY_interface", "eth1", "OCF_RESKEY_nic", "eth2"}, ok(str("nic", "eth2", true))},
		{"deprecated", []string{"OCF_RESKEY_old", "x"}, ok(str("old", "x", true))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s seen
			env := with(good, tc.env...)
			r := run(testAgent(&s), env, "validate-all")
			if r.code != tc.want.code {
				t.Fatalf("code %d, want %d; stderr:\n%s", r.code, tc.want.code, r.stderr)
			}
			if tc.want.code != Success {
				if want := "ocf-exit-reason:" + tc.want.reason; r.lastLine() != want {
					t.Errorf("exit reason %q, want %q", r.lastLine(), want)
				}
				if !strings.Contains(r.stderr, "ERROR: "+tc.want.reason) {
					t.Errorf("stderr does not log the error: %q", r.stderr)
				}
				if s.called != "" {
					t.Errorf("handler ran with bad parameters")
				}
				return
			}
			tc.want.check(t, s.r)
		})
	}
}

func TestParamWarnings(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string // a WARNING line must contain it; "" for no warning
	}{
		{[]string{"OCF_RESKEY_interface", "eth1"}, "WARNING: parameter interface is deprecated: use nic"},
		{[]string{"OCF_RESKEY_nic", "eth1"}, ""},
		{[]string{"OCF_RESKEY_old", "x"}, "WARNING: parameter old is deprecated: use nic instead"},
		{[]string{"OCF_RESKEY_old", ""}, ""},
	} {
		r := run(testAgent(&seen{}), with(good, tc.env...), "validate-all")
		if r.code != Success {
			t.Fatalf("%v: code %d", tc.env, r.code)
		}
		if tc.want == "" && strings.Contains(r.stderr, "WARNING") {
			t.Errorf("%v: unexpected warning %q", tc.env, r.stderr)
		}
		if tc.want != "" && !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.env, r.stderr, tc.want)
		}
	}
}

func TestParamAccessorsPanicOnMisuse(t *testing.T) {
	var s seen
	if r := run(testAgent(&s), good, "start"); r.code != Success {
		t.Fatal(r.stderr)
	}
	for name, f := range map[string]func(){
		"undeclared":      func() { s.r.String("nope") },
		"Bool of string":  func() { s.r.Bool("ip") },
		"Int of boolean":  func() { s.r.Int("enabled") },
		"IsSet undeclard": func() { s.r.IsSet("nope") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestParseBool(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"yes", true, false}, {"Yes", true, false}, {"TRUE", true, false}, {"on", true, false},
		{"1", true, false}, {"y", true, false}, {" yes\n", true, false},
		{"no", false, false}, {"NO", false, false}, {"false", false, false}, {"oFF", false, false},
		{"0", false, false}, {"n", false, false},
		{"", false, true}, {"ja", false, true}, {"2", false, true}, {"yess", false, true}, {"enable", false, true},
	} {
		got, err := ParseBool(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestExitReason(t *testing.T) {
	sentinel := errors.New("disk on fire")
	for _, tc := range []struct {
		name   string
		err    error
		prefix string // OCF_EXIT_REASON_PREFIX, "" for the default
		code   Code
		last   string // the last stderr line; "" when none must be printed
		level  string // the log level of the logged reason
	}{
		{"success", nil, "", Success, "", ""},
		{"bare not running", Exit(NotRunning), "", NotRunning, "", ""},
		{"bare promoted", Exit(RunningPromoted), "", RunningPromoted, "", ""},
		{"generic", Errorf(ErrGeneric, "boom %d", 1), "", ErrGeneric, "ocf-exit-reason:boom 1", "ERROR"},
		{"custom prefix", Errorf(ErrPerm, "no way"), "REASON>", ErrPerm, "REASON>no way", "ERROR"},
		{"multi-line", Errorf(ErrInstalled, "ctdbd\nnot found"), "", ErrInstalled, "ocf-exit-reason:ctdbd not found", "ERROR"},
		{"plain error", fmt.Errorf("read config: %w", sentinel), "", ErrGeneric, "ocf-exit-reason:read config: disk on fire", "ERROR"},
		{"wrapped code", fmt.Errorf("ctx: %w", Errorf(ErrArgs, "no such nic")), "", ErrArgs, "ocf-exit-reason:ctx: no such nic", "ERROR"},
		{"not running with reason", Errorf(NotRunning, "address gone"), "", NotRunning, "ocf-exit-reason:address gone", "INFO"},
		{"degraded", Errorf(Degraded, "one path down"), "", Degraded, "ocf-exit-reason:one path down", "ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAgent(&seen{})
			a.Actions[0].Handler = func(r *Request) error {
				r.Log.Infof("working")
				return tc.err
			}
			env := with(good)
			if tc.prefix != "" {
				env["OCF_EXIT_REASON_PREFIX"] = tc.prefix
			}
			r := run(a, env, "start")
			if r.code != tc.code {
				t.Fatalf("code %d, want %d", r.code, tc.code)
			}
			if tc.last == "" {
				if strings.Contains(r.stderr, "exit-reason") || !strings.HasSuffix(r.lastLine(), "INFO: working") {
					t.Errorf("stderr %q: want no exit reason", r.stderr)
				}
				return
			}
			if r.lastLine() != tc.last {
				t.Errorf("last line %q, want %q", r.lastLine(), tc.last)
			}
			reason := strings.TrimPrefix(tc.last, "ocf-exit-reason:")
			reason = strings.TrimPrefix(reason, "REASON>")
			if !strings.Contains(r.stderr, ": "+tc.level+": ") || !strings.Contains(r.stderr, reason) {
				t.Errorf("reason not logged at %s: %q", tc.level, r.stderr)
			}
		})
	}
}

func TestHandlerPanicIsGenericError(t *testing.T) {
	a := testAgent(&seen{})
	a.Actions[0].Handler = func(r *Request) error { var m map[string]int; m["x"] = 1; return nil }
	r := run(a, good, "start")
	if r.code != ErrGeneric {
		t.Fatalf("code %d, want 1 (exit status 2 would ban the node)", r.code)
	}
	if want := "ocf-exit-reason:Dummy start: internal error: assignment to entry in nil map"; r.lastLine() != want {
		t.Errorf("exit reason %q, want %q", r.lastLine(), want)
	}
	if !strings.Contains(r.stderr, "ERROR: panic in start: assignment to entry in nil map") || !strings.Contains(r.stderr, "agent_test.go") {
		t.Errorf("no stack in the log:\n%s", r.stderr)
	}
}

func TestCodes(t *testing.T) {
	sentinel := errors.New("sentinel")
	e := Errorf(ErrConfigured, "parameter x: %w", sentinel)
	for _, tc := range []struct {
		err  error
		want Code
	}{
		{nil, Success},
		{Exit(Success), Success},
		{Exit(NotRunning), NotRunning},
		{Exit(DegradedPromoted), DegradedPromoted},
		{errors.New("x"), ErrGeneric},
		{e, ErrConfigured},
		{fmt.Errorf("outer: %w", Exit(FailedPromoted)), FailedPromoted},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", Errorf(ErrPerm, "p"))), ErrPerm},
	} {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if Exit(Success) != nil {
		t.Error("Exit(Success) is not nil")
	}
	if !errors.Is(e, sentinel) {
		t.Error("Errorf with %w does not wrap")
	}
	if e.Error() != "parameter x: sentinel" {
		t.Errorf("Error() = %q", e.Error())
	}
	if Exit(NotRunning).Error() != "OCF_NOT_RUNNING" {
		t.Errorf("Exit(NotRunning).Error() = %q", Exit(NotRunning).Error())
	}
	want := map[Code]int{Success: 0, ErrGeneric: 1, ErrArgs: 2, ErrUnimplemented: 3, ErrPerm: 4, ErrInstalled: 5,
		ErrConfigured: 6, NotRunning: 7, RunningPromoted: 8, FailedPromoted: 9, Degraded: 190, DegradedPromoted: 191}
	for c, n := range want {
		if int(c) != n || !strings.HasPrefix(c.String(), "OCF_") {
			t.Errorf("code %s = %d, want %d", c, int(c), n)
		}
	}
	if Code(42).String() != "OCF_CODE_42" {
		t.Errorf("Code(42) = %s", Code(42))
	}
}

func TestDeadline(t *testing.T) {
	for _, tc := range []struct {
		action  string
		timeout string // OCF_RESKEY_CRM_meta_timeout
		want    time.Duration
		margin  time.Duration
	}{
		{"start", "20000", 20 * time.Second, 2 * time.Second},
		{"start", "3000", 3 * time.Second, 500 * time.Millisecond},
		{"start", "600000", 600 * time.Second, 5 * time.Second},
		{"start", "800", 800 * time.Millisecond, 400 * time.Millisecond},
		{"start", "", 30 * time.Second, 3 * time.Second},           // the declared timeout
		{"stop", "abc", 25 * time.Second, 2500 * time.Millisecond}, // unparsable: declared
		{"stop", "-5", 25 * time.Second, 2500 * time.Millisecond},
		{"validate-all", "", 1500 * time.Millisecond, 500 * time.Millisecond},
		{"status", "", DefaultTimeout, 2 * time.Second}, // nothing declared
	} {
		t.Run(tc.action+"/"+tc.timeout, func(t *testing.T) {
			var s seen
			env := with(good)
			if tc.timeout != "" {
				env["OCF_RESKEY_CRM_meta_timeout"] = tc.timeout
			}
			before := time.Now()
			if r := run(testAgent(&s), env, tc.action); r.code != Success {
				t.Fatal(r.stderr)
			}
			if s.r.Timeout() != tc.want {
				t.Errorf("Timeout() = %v, want %v", s.r.Timeout(), tc.want)
			}
			got := s.deadline.Sub(before)
			if want := tc.want - tc.margin; got < want-50*time.Millisecond || got > want+50*time.Millisecond {
				t.Errorf("deadline in %v, want %v", got, want)
			}
		})
	}
}

func TestSafetyMargin(t *testing.T) {
	for _, tc := range []struct{ timeout, want time.Duration }{
		{100 * time.Millisecond, 50 * time.Millisecond},
		{time.Second, 500 * time.Millisecond},
		{5 * time.Second, 500 * time.Millisecond},
		{20 * time.Second, 2 * time.Second},
		{50 * time.Second, 5 * time.Second},
		{time.Hour, 5 * time.Second},
	} {
		if got := safetyMargin(tc.timeout); got != tc.want {
			t.Errorf("safetyMargin(%v) = %v, want %v", tc.timeout, got, tc.want)
		}
	}
}

func TestProbeAndInterval(t *testing.T) {
	for _, tc := range []struct {
		action, interval string
		probe            bool
		want             time.Duration
	}{
		{"monitor", "", true, 0},
		{"monitor", "0", true, 0},
		{"monitor", "10000", false, 10 * time.Second},
		{"start", "0", false, 0},
		{"start", "", false, 0},
	} {
		var s seen
		env := with(good)
		if tc.interval != "" {
			env["OCF_RESKEY_CRM_meta_interval"] = tc.interval
		}
		if r := run(testAgent(&s), env, tc.action); r.code != Success {
			t.Fatal(r.stderr)
		}
		if s.r.IsProbe() != tc.probe || s.r.Interval() != tc.want {
			t.Errorf("%s interval %q: IsProbe %v Interval %v, want %v %v", tc.action, tc.interval, s.r.IsProbe(), s.r.Interval(), tc.probe, tc.want)
		}
	}
}

func TestRequestEnvironment(t *testing.T) {
	var s seen
	env := with(good,
		"OCF_RESOURCE_INSTANCE", "vip1",
		"OCF_RESKEY_CRM_meta_on_node", "n2",
		"OCF_RESKEY_CRM_meta_clone_max", "3",
		"OCF_CHECK_LEVEL", "10",
		"HA_RSCTMP", "/tmp/rsc",
		"SOMETHING", "else",
	)
	if r := run(testAgent(&s), env, "monitor"); r.code != Success {
		t.Fatal(r.stderr)
	}
	r := s.r
	for _, c := range []struct{ got, want any }{
		{r.Action, "monitor"},
		{r.Instance, "vip1"},
		{r.NodeName(), "n2"},
		{r.Meta("clone-max"), "3"},
		{r.Meta("clone_max"), "3"},
		{r.CheckLevel(), 10},
		{r.StateDir(), "/tmp/rsc"},
		{r.Getenv("SOMETHING"), "else"},
	} {
		if c.got != c.want {
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
	if run(testAgent(&s), good, "monitor"); s.r.StateDir() != "/run/resource-agents" || s.r.CheckLevel() != 0 || s.r.Instance != "" {
		t.Errorf("defaults: StateDir %q CheckLevel %d Instance %q", s.r.StateDir(), s.r.CheckLevel(), s.r.Instance)
	}
}

func TestNotify(t *testing.T) {
	var s seen
	env := with(good,
		"OCF_RESKEY_CRM_meta_notify_type", "post",
		"OCF_RESKEY_CRM_meta_notify_operation", "promote",
		"OCF_RESKEY_CRM_meta_notify_start_uname", "n1 n2 ",
		"OCF_RESKEY_CRM_meta_notify_stop_uname", " ",
		"OCF_RESKEY_CRM_meta_notify_active_uname", "n1 n2 n3",
		"OCF_RESKEY_CRM_meta_notify_promote_uname", "n3",
		"OCF_RESKEY_CRM_meta_notify_master_uname", "n3", // legacy name only
		"OCF_RESKEY_CRM_meta_notify_unpromoted_uname", "n1", // new name wins
		"OCF_RESKEY_CRM_meta_notify_slave_uname", "n1 n2",
	)
	if r := run(testAgent(&s), env, "notify"); r.code != Success {
		t.Fatal(r.stderr)
	}
	got := fmt.Sprintf("%+v", s.r.Notify())
	want := "{Type:post Operation:promote Start:[n1 n2] Stop:[] Active:[n1 n2 n3] Inactive:[] Promote:[n3] Demote:[] Promoted:[n3] Unpromote:[n1]}"
	if got != want {
		t.Errorf("Notify() =\n%s\nwant\n%s", got, want)
	}
	n := s.r.Notify()
	if n.Stop != nil || n.Inactive != nil {
		t.Errorf("empty lists are not nil: %#v %#v", n.Stop, n.Inactive)
	}
}

func TestLogShape(t *testing.T) {
	dir := t.TempDir()
	logfile := filepath.Join(dir, "ha.log")
	pid := os.Getpid()
	for _, tc := range []struct {
		instance string
		tag      string
	}{
		{"vip1", fmt.Sprintf("Dummy(vip1)[%d]", pid)},
		{"", fmt.Sprintf("Dummy[%d]", pid)},
	} {
		os.Remove(logfile)
		a := testAgent(&seen{})
		a.Actions[0].Handler = func(r *Request) error {
			r.Log.Infof("hello %s", "world")
			r.Log.Warnf("careful\n")
			r.Log.Errorf("bad")
			r.Log.Debugf("hidden")
			return nil
		}
		env := with(good, "HA_LOGFILE", logfile)
		if tc.instance != "" {
			env["OCF_RESOURCE_INSTANCE"] = tc.instance
		}
		r := run(a, env, "start")
		want := tc.tag + ": INFO: hello world\n" + tc.tag + ": WARNING: careful\n" + tc.tag + ": ERROR: bad\n"
		if r.stderr != want {
			t.Errorf("stderr:\n%s\nwant\n%s", r.stderr, want)
		}
		b, err := os.ReadFile(logfile)
		if err != nil {
			t.Fatal(err)
		}
		stamp := `[A-Z][a-z]{2} [0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} `
		re := regexp.MustCompile(`^` + stamp + regexp.QuoteMeta(tc.tag+": INFO: hello world") + "\n" +
			stamp + regexp.QuoteMeta(tc.tag+": WARNING: careful") + "\n" +
			stamp + regexp.QuoteMeta(tc.tag+": ERROR: bad") + "\n$")
		if !re.Match(b) {
			t.Errorf("HA_LOGFILE:\n%s", b)
		}
	}
}

// fakeSyslog records what the logger sends to syslog.
type fakeSyslog struct {
	prio   string
	tag    string
	lines  []string
	closed bool
}

func (f *fakeSyslog) Debug(m string) error   { f.lines = append(f.lines, "debug "+m); return nil }
func (f *fakeSyslog) Info(m string) error    { f.lines = append(f.lines, "info "+m); return nil }
func (f *fakeSyslog) Warning(m string) error { f.lines = append(f.lines, "warning "+m); return nil }
func (f *fakeSyslog) Err(m string) error     { f.lines = append(f.lines, "err "+m); return nil }
func (f *fakeSyslog) Close() error           { f.closed = true; return nil }

// facilityName names the facility of a syslog priority.
func facilityName(p syslog.Priority) string {
	for _, n := range []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
		"authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"} {
		if f, ok := facility(n); ok && f == p&^7 {
			return n
		}
	}
	return fmt.Sprint(int(p))
}

func TestLogSyslog(t *testing.T) {
	orig := dialSyslog
	t.Cleanup(func() { dialSyslog = orig })
	for _, tc := range []struct {
		facility string // HA_LOGFACILITY; "-" for unset
		debug    string // HA_debug
		dialed   string // the priority dialled; "" for none
		lines    []string
	}{
		{"-", "", "daemon", []string{"info INFO: hi", "warning WARNING: hm", "err ERROR: oh"}},
		{"local5", "1", "local5", []string{"debug DEBUG: dbg", "info INFO: hi", "warning WARNING: hm", "err ERROR: oh"}},
		{"none", "1", "", nil},
		{"nonsense", "", "", nil},
	} {
		var fake *fakeSyslog
		dialSyslog = func(p syslog.Priority, tag string) (syslogWriter, error) {
			fake = &fakeSyslog{prio: facilityName(p), tag: tag}
			return fake, nil
		}
		a := testAgent(&seen{})
		a.Actions[0].Handler = func(r *Request) error {
			r.Log.Debugf("dbg")
			r.Log.Infof("hi")
			r.Log.Warnf("hm")
			r.Log.Errorf("oh")
			return nil
		}
		env := with(good, "OCF_RESOURCE_INSTANCE", "r1", "HA_debug", tc.debug)
		if tc.facility != "-" {
			env["HA_LOGFACILITY"] = tc.facility
		} else {
			env["HA_LOGFACILITY"] = "" // run() sets none otherwise; "" means unset here
		}
		run(a, env, "start")
		if tc.dialed == "" {
			if fake != nil {
				t.Errorf("facility %q: syslog dialled", tc.facility)
			}
			continue
		}
		if fake == nil {
			t.Fatalf("facility %q: syslog not dialled", tc.facility)
		}
		if fake.prio != tc.dialed || fake.tag != "Dummy(r1)" || !fake.closed {
			t.Errorf("facility %q: dialled %s tag %q closed %v", tc.facility, fake.prio, fake.tag, fake.closed)
		}
		if strings.Join(fake.lines, "|") != strings.Join(tc.lines, "|") {
			t.Errorf("facility %q: syslog got %q, want %q", tc.facility, fake.lines, tc.lines)
		}
	}
}

func TestLogDebug(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range []struct {
		env   []string
		debug bool
	}{
		{nil, false},
		{[]string{"HA_debug", "0"}, false},
		{[]string{"HA_debug", "no"}, false},
		{[]string{"HA_debug", "1"}, true},
		{[]string{"HA_debug", "2"}, true},
		{[]string{"HA_debug", "yes"}, true},
		{[]string{"OCF_TRACE_RA", "1"}, true},
		{[]string{"OCF_TRACE_RA", "0"}, false},
		{[]string{"HA_debug", "0", "OCF_TRACE_RA", "true"}, true},
	} {
		debuglog := filepath.Join(dir, fmt.Sprintf("debug%d.log", i))
		logfile := filepath.Join(dir, fmt.Sprintf("ha%d.log", i))
		a := testAgent(&seen{})
		a.Actions[0].Handler = func(r *Request) error {
			r.Log.Debugf("details %d", 42)
			r.Log.Infof("plain")
			return nil
		}
		env := with(good, append(tc.env, "HA_DEBUGLOG", debuglog, "HA_LOGFILE", logfile)...)
		r := run(a, env, "start")
		if got := strings.Contains(r.stderr, "]: DEBUG: details 42\n"); got != tc.debug {
			t.Errorf("%v: debug on stderr %v, want %v:\n%s", tc.env, got, tc.debug, r.stderr)
		}
		dl, _ := os.ReadFile(debuglog)
		if got := strings.Contains(string(dl), "DEBUG: details 42"); got != tc.debug {
			t.Errorf("%v: debug in HA_DEBUGLOG %v, want %v", tc.env, got, tc.debug)
		}
		if strings.Contains(string(dl), "INFO") {
			t.Errorf("%v: info in HA_DEBUGLOG: %s", tc.env, dl)
		}
		lf, _ := os.ReadFile(logfile)
		if !strings.Contains(string(lf), "INFO: plain") {
			t.Errorf("%v: HA_LOGFILE lacks the info line: %s", tc.env, lf)
		}
	}
}

func TestNilLoggerIsQuiet(t *testing.T) {
	var l *Logger
	l.Infof("nothing")
	l.Close()
}

func TestBlankParamIsDefault(t *testing.T) {
	var s seen
	if r := run(testAgent(&s), with(good, "OCF_RESKEY_port", " \t", "OCF_RESKEY_nic", " ", "OCF_RESKEY_interface", "eth3"), "validate-all"); r.code != Success {
		t.Fatal(r.stderr)
	}
	if s.r.Int("port") != 80 || s.r.IsSet("port") || s.r.String("nic") != "eth3" {
		t.Errorf("port %d (set %v), nic %q", s.r.Int("port"), s.r.IsSet("port"), s.r.String("nic"))
	}
}

func TestFacility(t *testing.T) {
	for name, want := range map[string]syslog.Priority{
		"daemon": syslog.LOG_DAEMON, "local0": syslog.LOG_LOCAL0, "local7": syslog.LOG_LOCAL7,
		"authpriv": syslog.LOG_AUTHPRIV, "kern": syslog.LOG_KERN, "local8": -1, "Daemon": -1, "": -1,
	} {
		got, ok := facility(name)
		if ok != (want >= 0) || ok && got != want {
			t.Errorf("facility(%q) = %v, %v; want %v", name, got, ok, want)
		}
	}
}
