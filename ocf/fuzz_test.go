package ocf

import (
	"strings"
	"testing"
)

// FuzzParseBool: every input is either one of the words resource-agents
// reads as a boolean (any case, surrounding space ignored) or an error
// that quotes it; the answer never depends on case.
func FuzzParseBool(f *testing.F) {
	for _, s := range []string{"yes", "NO", "True", "off", "1", "0", "y", "", " on ", "ja", "\x00", "ÿes"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBool(s)
		word := strings.ToLower(strings.TrimSpace(s))
		_, isTrue := map[string]bool{"yes": true, "true": true, "on": true, "1": true, "y": true}[word]
		_, isFalse := map[string]bool{"no": true, "false": true, "off": true, "0": true, "n": true}[word]
		switch {
		case isTrue && (err != nil || !b), isFalse && (err != nil || b):
			t.Fatalf("ParseBool(%q) = %v, %v", s, b, err)
		case !isTrue && !isFalse && err == nil:
			t.Fatalf("ParseBool(%q) accepted a non-boolean as %v", s, b)
		}
		b2, err2 := ParseBool(strings.ToUpper(s))
		if strings.ToLower(strings.ToUpper(s)) == strings.ToLower(s) && (b2 != b || (err2 == nil) != (err == nil)) {
			t.Fatalf("ParseBool(%q) and ParseBool(upper) differ", s)
		}
	})
}

// FuzzParams: arbitrary OCF_RESKEY_ values through Agent.Run with
// validate-all never panic and end in 0, or in 6 with an exit reason that
// names the parameter at fault; stop and probes never fail on them.
func FuzzParams(f *testing.F) {
	f.Add("198.51.100.1", "80", "yes", "fast", "eth0", "")
	f.Add("", "x", "maybe", "medium", "", "old")
	f.Add(" ", "-0", "TRUE", "slow ", "\n", "\x00")
	f.Add("a", "9223372036854775808", "Off", "", "", "")
	f.Fuzz(func(t *testing.T, ip, port, enabled, mode, iface, old string) {
		env := map[string]string{
			"OCF_RESKEY_ip": ip, "OCF_RESKEY_port": port, "OCF_RESKEY_enabled": enabled,
			"OCF_RESKEY_mode": mode, "OCF_RESKEY_interface": iface, "OCF_RESKEY_old": old,
		}
		var s seen
		r := run(testAgent(&s), env, "validate-all")
		switch r.code {
		case Success:
			if s.r == nil {
				t.Fatal("success without the handler running")
			}
			// Values read back as given, trimmed, or as the default.
			if got := s.r.String("ip"); got != strings.TrimSpace(ip) {
				t.Fatalf("ip %q from %q", got, ip)
			}
			if strings.TrimSpace(port) == "" && s.r.Int("port") != 80 {
				t.Fatalf("port default lost: %d", s.r.Int("port"))
			}
			s.r.Bool("enabled")
		case ErrConfigured:
			last := r.lastLine()
			if !strings.HasPrefix(last, "ocf-exit-reason:parameter ") {
				t.Fatalf("exit reason %q does not name a parameter", last)
			}
			name := strings.Fields(strings.TrimPrefix(last, "ocf-exit-reason:parameter "))[0]
			name = strings.TrimSuffix(name, ":")
			if (&Agent{Params: testAgent(&s).Params}).Param(name) == nil {
				t.Fatalf("exit reason names %q, not a parameter", name)
			}
			if s.called != "" {
				t.Fatal("handler ran with bad parameters")
			}
		default:
			t.Fatalf("validate-all returned %d; stderr:\n%s", r.code, r.stderr)
		}
		// Whatever the parameters, stop succeeds (the handler succeeds
		// here) and a probe says running (the handler) or not running.
		if c := run(testAgent(&seen{}), env, "stop").code; c != Success {
			t.Fatalf("stop returned %d", c)
		}
		if c := run(testAgent(&seen{}), env, "monitor").code; c != Success && c != NotRunning || (c == NotRunning) != (r.code != Success) {
			t.Fatalf("probe returned %d, validate-all %d", c, r.code)
		}
	})
}
