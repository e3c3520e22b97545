package tickle

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storhaug/storhaug/internal/atomicfile"
	"github.com/storhaug/storhaug/internal/fsname"
)

// local is the node-local state of one VIP's tickling, in a directory that
// does not outlive a reboot (the agent's HA_RSCTMP):
//   - <name>.stash: the list the takeover read and sent the first round to,
//     left for the keeper to send the later rounds (its mtime is when the
//     first round went out);
//   - <name>.released: the address was released here; the keeper must not
//     overwrite the final list stop recorded;
//   - <name>.lock: serialises recording and writing between the keeper and
//     stop.
type local struct {
	base string
	vip  netip.Addr
}

func newLocal(dir string, vip netip.Addr, netns string) local {
	name := "storhaug-tickle-" + fsname.Key(vip.String())
	if netns != "" {
		name += "@" + fsname.Key(netns)
	}
	return local{base: filepath.Join(dir, name), vip: vip}
}

// lock takes the exclusive lock; the returned function releases it.
func (l local) lock() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(l.base), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(l.base+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func (l local) setReleased(released bool) error {
	if !released {
		err := os.Remove(l.base + ".released")
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	return atomicfile.Write(l.base+".released", nil, 0o600)
}

func (l local) released() bool {
	_, err := os.Stat(l.base + ".released")
	return err == nil
}

// stash leaves conns, tickled for the first time at first, for the keeper.
func (l local) stash(conns []Conn, first time.Time) error {
	if err := os.MkdirAll(filepath.Dir(l.base), 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	Encode(&b, l.vip, conns)
	if err := atomicfile.Write(l.base+".stash", b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Chtimes(l.base+".stash", first, first)
}

// takeStash returns and removes the stash; ok is false when there is none.
func (l local) takeStash(log Logger) (conns []Conn, first time.Time, ok bool, err error) {
	f, err := os.Open(l.base + ".stash")
	if os.IsNotExist(err) {
		return nil, time.Time{}, false, nil
	}
	if err != nil {
		return nil, time.Time{}, false, err
	}
	defer f.Close()
	os.Remove(f.Name())
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, false, err
	}
	conns, err = Decode(f, l.vip, log)
	return conns, st.ModTime(), true, err
}
