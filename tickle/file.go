package tickle

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/internal/fsname"
)

// The connection list file, one per VIP in the tickle directory (see
// [Path]). Version 1:
//
//	# storhaug-tickle v1 vip=<VIP>
//	<VIP>:<port> <client>:<port>
//	...
//
// The first line is the header; IPv6 addresses are written in brackets
// ("[2001:db8::10]:445 [2001:db8::20]:51234"). Further lines starting with
// "#" are comments, blank lines are ignored. A reader skips, with a warning,
// a line it cannot parse or whose local address is not the file's VIP. The
// file is replaced atomically, mode 0600, in a directory of mode 0700.
const (
	magic   = "storhaug-tickle"
	version = "v1"
	// MaxFileSize bounds what ReadFile reads: far more than a VIP's
	// connections need (about 100 bytes a connection).
	MaxFileSize = 64 << 20
)

// Path is the file that holds vip's connections in dir: "<vip>.tickle",
// with the colons of an IPv6 address written as underscores
// ("2001_db8__10.tickle") so that every shared file system accepts it.
func Path(dir string, vip netip.Addr) string {
	return filepath.Join(dir, fsname.Key(vip.WithZone("").String())+".tickle")
}

// Encode writes the file format for vip's connections. Connections whose
// local address is not vip are left out.
func Encode(w io.Writer, vip netip.Addr, conns []Conn) error {
	_, err := w.Write(appendFile(nil, vip, conns))
	return err
}

func appendFile(b []byte, vip netip.Addr, conns []Conn) []byte {
	b = slices.Grow(b, 64+64*len(conns))
	b = fmt.Appendf(b, "# %s %s vip=%s\n", magic, version, vip)
	for _, c := range conns {
		if c.Local.Addr() != vip {
			continue
		}
		b = c.Local.AppendTo(b)
		b = append(b, ' ')
		b = c.Remote.AppendTo(b)
		b = append(b, '\n')
	}
	return b
}

// Decode reads the file format, for vip. It fails when the header is
// missing, of another version, or for another address; a bad line is
// skipped with a warning to log (which may be nil).
func Decode(r io.Reader, vip netip.Addr, log Logger) ([]Conn, error) {
	log = orNop(log)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("header: %w", err)
		}
		return nil, errors.New("empty file: no header")
	}
	if err := checkHeader(sc.Text(), vip); err != nil {
		return nil, err
	}
	var conns []Conn
	bad := 0
	for n := 2; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		c, err := parseLine(line)
		if err == nil && c.Local.Addr() != vip {
			err = fmt.Errorf("local address %s is not the file's VIP %s", c.Local.Addr(), vip)
		}
		if err != nil {
			if bad++; bad <= 10 {
				log.Warnf("tickle list for %s, line %d skipped: %v", vip, n, err)
			}
			continue
		}
		conns = append(conns, c)
	}
	if bad > 10 {
		log.Warnf("tickle list for %s: %d bad lines skipped in all", vip, bad)
	}
	if err := sc.Err(); err != nil {
		return conns, fmt.Errorf("after %d connections: %w", len(conns), err)
	}
	return Dedup(conns), nil
}

func checkHeader(line string, vip netip.Addr) error {
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "#" || f[1] != magic {
		return fmt.Errorf("not a storhaug tickle list (no %q header)", "# "+magic+" "+version)
	}
	if f[2] != version {
		return fmt.Errorf("tickle list format %s is not supported (this storhaug reads %s)", f[2], version)
	}
	v, ok := strings.CutPrefix(f[3], "vip=")
	if !ok {
		return errors.New("tickle list header names no vip=")
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return fmt.Errorf("tickle list header: bad vip %q", v)
	}
	if a.Unmap() != vip {
		return fmt.Errorf("tickle list is for %s, not %s", a, vip)
	}
	return nil
}

func parseLine(line string) (Conn, error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return Conn{}, fmt.Errorf("want \"VIP:port client:port\", got %d fields", len(f))
	}
	l, err := netip.ParseAddrPort(f[0])
	if err != nil {
		return Conn{}, err
	}
	r, err := netip.ParseAddrPort(f[1])
	if err != nil {
		return Conn{}, err
	}
	if l.Port() == 0 || r.Port() == 0 {
		return Conn{}, errors.New("port 0")
	}
	if l.Addr().Zone() != "" || r.Addr().Zone() != "" {
		return Conn{}, errors.New("zoned addresses are not supported")
	}
	c := NewConn(l, r)
	if c.Local.Addr().Is4() != c.Remote.Addr().Is4() {
		return Conn{}, errors.New("local and remote address families differ")
	}
	if !validPeer(c.Remote.Addr()) {
		return Conn{}, fmt.Errorf("%s is not a unicast client address", c.Remote.Addr())
	}
	return c, nil
}

// validPeer rejects what no TCP client can be, so a tampered file cannot aim
// packets at broadcast or multicast groups.
func validPeer(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// WriteFile replaces vip's list in dir (made 0700 if missing) atomically,
// mode 0600.
func WriteFile(dir string, vip netip.Addr, conns []Conn) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(Path(dir, vip), appendFile(nil, vip, conns), 0o600)
}

// ReadFile reads vip's list from dir. A missing file is an error matching
// fs.ErrNotExist. A file that other users may write is refused: its lines
// aim packets.
func ReadFile(dir string, vip netip.Addr, log Logger) ([]Conn, error) {
	f, err := os.Open(Path(dir, vip))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", f.Name())
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%s is writable by other users (mode %#o): not trusted", f.Name(), st.Mode().Perm())
	}
	conns, err := Decode(io.LimitReader(f, MaxFileSize), vip, log)
	if err != nil {
		return conns, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return conns, nil
}

// IsNotExist reports whether err says the list file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
