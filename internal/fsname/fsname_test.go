package fsname

import "testing"

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"2001:db8::10":      "2001_db8__10",
		"198.51.100.7":      "198.51.100.7",
		"rsc:1":             "rsc_1",
		"/run/netns/a\x00b": "_run_netns_a_b",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}
