package tickle

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type logRec struct{ warns []string }

func (l *logRec) Infof(f string, a ...any)  {}
func (l *logRec) Debugf(f string, a ...any) {}
func (l *logRec) Warnf(f string, a ...any) {
	l.warns = append(l.warns, strings.TrimSpace(strings.ReplaceAll(sprintf(f, a...), "\n", " ")))
}

func conn(l, r string) Conn { return NewConn(netip.MustParseAddrPort(l), netip.MustParseAddrPort(r)) }

func TestFileRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tickle")
	for _, tc := range []struct {
		vip   string
		conns []Conn
	}{
		{"198.51.100.10", []Conn{conn("198.51.100.10:445", "198.51.100.20:50000"), conn("198.51.100.10:2049", "203.0.113.9:700")}},
		{"2001:db8::10", []Conn{conn("[2001:db8::10]:445", "[2001:db8::20]:50000"), conn("[2001:db8::10]:445", "[2001:db8:1::5]:1")}},
		{"198.51.100.11", nil},
	} {
		vip := netip.MustParseAddr(tc.vip)
		if err := WriteFile(dir, vip, tc.conns); err != nil {
			t.Fatal(err)
		}
		var log logRec
		got, err := ReadFile(dir, vip, &log)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, Dedup(slices.Clone(tc.conns))) || len(log.warns) > 0 {
			t.Errorf("%s: got %v (warnings %q), want %v", vip, got, log.warns, tc.conns)
		}
		st, err := os.Stat(Path(dir, vip))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: file mode %v, %v; want 0600", vip, st.Mode(), err)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, %v; want 0700", st.Mode(), err)
	}
	if got := filepath.Base(Path(dir, netip.MustParseAddr("2001:db8::10"))); got != "2001_db8__10.tickle" {
		t.Errorf("IPv6 file name %q", got)
	}
	b, _ := os.ReadFile(Path(dir, netip.MustParseAddr("2001:db8::10")))
	want := "# storhaug-tickle v1 vip=2001:db8::10\n[2001:db8::10]:445 [2001:db8::20]:50000\n[2001:db8::10]:445 [2001:db8:1::5]:1\n"
	if string(b) != want {
		t.Errorf("file:\n%s\nwant:\n%s", b, want)
	}
}

func TestDecodeSkipsBadLines(t *testing.T) {
	vip := netip.MustParseAddr("198.51.100.10")
	in := "# storhaug-tickle v1 vip=198.51.100.10\n" +
		"198.51.100.10:445 198.51.100.20:50000\n" +
		"garbage\n" +
		"198.51.100.99:445 198.51.100.20:50001\n" + // another VIP: never trusted
		"198.51.100.10:445 [2001:db8::1]:5\n" + // mixed families
		"198.51.100.10:445 255.255.255.255:5\n" + // broadcast
		"198.51.100.10:445 224.0.0.1:5\n" + // multicast
		"198.51.100.10:0 198.51.100.20:5\n" +
		"\n# a comment\n" +
		"[::ffff:198.51.100.10]:445 198.51.100.21:50002\n" + // mapped: normalised
		"198.51.100.10:445 198.51.100.20:50000\n" // duplicate
	var log logRec
	got, err := Decode(strings.NewReader(in), vip, &log)
	if err != nil {
		t.Fatal(err)
	}
	want := []Conn{conn("198.51.100.10:445", "198.51.100.20:50000"), conn("198.51.100.10:445", "198.51.100.21:50002")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if len(log.warns) != 6 {
		t.Errorf("want 6 warnings, got %d: %q", len(log.warns), log.warns)
	}
	if !strings.Contains(strings.Join(log.warns, "\n"), "line 4 skipped: local address 198.51.100.99 is not the file's VIP") {
		t.Errorf("warnings do not name the foreign VIP: %q", log.warns)
	}
}

func TestDecodeRejectsHeaders(t *testing.T) {
	vip := netip.MustParseAddr("198.51.100.10")
	for in, want := range map[string]string{
		"": "no header",
		"198.51.100.10:445 198.51.100.20:50000\n":   "not a storhaug tickle list",
		"# storhaug-tickle v2 vip=198.51.100.10\n":  "v2 is not supported",
		"# storhaug-tickle v1 vip=198.51.100.11\n":  "is for 198.51.100.11, not 198.51.100.10",
		"# storhaug-tickle v1 vip=bogus\n":          "bad vip",
		"# storhaug-tickle v1 host=198.51.100.10\n": "no vip=",
	} {
		_, err := Decode(strings.NewReader(in), vip, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

func TestReadFileRefusesWritableByOthers(t *testing.T) {
	dir := t.TempDir()
	vip := netip.MustParseAddr("198.51.100.10")
	if err := WriteFile(dir, vip, []Conn{conn("198.51.100.10:445", "198.51.100.20:50000")}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(Path(dir, vip), 0o666)
	if _, err := ReadFile(dir, vip, nil); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("got %v", err)
	}
	if _, err := ReadFile(dir, netip.MustParseAddr("198.51.100.99"), nil); !IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("# storhaug-tickle v1 vip=198.51.100.10\n198.51.100.10:445 198.51.100.20:50000\n")
	f.Add("# storhaug-tickle v1 vip=2001:db8::10\n[2001:db8::10]:445 [2001:db8::20]:1\nx y z\n")
	f.Add("# storhaug-tickle v1 vip=198.51.100.10\n[::ffff:198.51.100.10]:1 1.2.3.4:5\n")
	f.Fuzz(func(t *testing.T, in string) {
		for _, v := range []string{"198.51.100.10", "2001:db8::10"} {
			vip := netip.MustParseAddr(v)
			conns, err := Decode(strings.NewReader(in), vip, nil)
			if err != nil {
				continue
			}
			for _, c := range conns {
				if c.Local.Addr() != vip || c.Local.Port() == 0 || c.Remote.Port() == 0 ||
					c.Remote.Addr().Is4() != vip.Is4() || c.Remote.Addr().Is4In6() || !validPeer(c.Remote.Addr()) {
					t.Fatalf("Decode let through %v for %s", c, vip)
				}
			}
			// What was read writes back and reads again the same.
			var b bytes.Buffer
			Encode(&b, vip, conns)
			again, err := Decode(&b, vip, nil)
			if err != nil || !slices.Equal(again, conns) {
				t.Fatalf("round trip: %v, %v != %v", err, again, conns)
			}
		}
	})
}

// The conntrack reader walks attributes the kernel sent: no input may make
// it panic or return a flow that is not on the VIP.
func FuzzParseCtFlow(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{8, 0, 1, 0x80, 4, 0, 1, 0})
	vip := netip.MustParseAddr("198.51.100.10")
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, ok := parseCtFlow(b, vip); ok && c.Local.Addr() != vip {
			t.Fatalf("flow %v is not on %s", c, vip)
		}
	})
}
