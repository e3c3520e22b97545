// Package ganeshatest gives tests a private D-Bus message bus and a fake
// org.ganesha.nfsd admin service on it, so that grace handling can be tested
// without root and without ganesha.nfsd.
package ganeshatest

import (
	"bufio"
	"github.com/storhaug/storhaug/internal/need"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// Bus starts a dbus-daemon of its own for this test, listening on a socket
// in a temporary directory, and returns its address. It is killed (by pid)
// when the test ends. The test is skipped when dbus-daemon is missing.
func Bus(t testing.TB) string {
	t.Helper()
	bin := need.Tool(t, "dbus-daemon", "dbus-daemon")
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	sock := filepath.Join(dir, "bus")
	if err := os.WriteFile(conf, []byte(strings.Replace(busConfig, "SOCKET", sock, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--print-address", "--nofork")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon did not start")
	}
	return ""
}

// Ganesha is a fake org.ganesha.nfsd admin object. It records the grace
// arguments it receives and answers as ganesha does: grace returns
// (status, message), get_grace returns (in grace, status, message).
type Ganesha struct {
	mu      sync.Mutex
	calls   []string
	inGrace bool
	// Refuse, when set, makes grace answer status false with this message.
	Refuse string
	// Delay holds each grace reply back this long.
	Delay time.Duration
	// onGrace, when set, runs with each grace argument before the reply
	// (what ganesha does meanwhile, such as unmonitoring released clients).
	onGrace func(arg string)
	conn    *dbus.Conn
}

// Serve connects to the bus at addr, exports the admin object and takes the
// name org.ganesha.nfsd. It goes away (the name with it) when the test ends.
func Serve(t testing.TB, addr string) *Ganesha {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("fake ganesha: connect: %v", err)
	}
	g := &Ganesha{conn: conn}
	t.Cleanup(func() { conn.Close() })
	methods := map[string]any{
		"grace": func(arg string) (bool, string, *dbus.Error) {
			g.mu.Lock()
			g.calls = append(g.calls, arg)
			refuse, delay, hook := g.Refuse, g.Delay, g.onGrace
			if refuse == "" {
				g.inGrace = true
			}
			g.mu.Unlock()
			if hook != nil {
				hook(arg)
			}
			time.Sleep(delay)
			if refuse != "" {
				return false, refuse, nil
			}
			return true, "Started grace period", nil
		},
		"get_grace": func() (bool, bool, string, *dbus.Error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			return g.inGrace, true, "get grace success", nil
		},
	}
	if err := conn.ExportMethodTable(methods, "/org/ganesha/nfsd/admin", "org.ganesha.nfsd.admin"); err != nil {
		t.Fatal(err)
	}
	rep, err := conn.RequestName("org.ganesha.nfsd", dbus.NameFlagDoNotQueue)
	if err != nil || rep != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("fake ganesha: cannot own org.ganesha.nfsd: %v %v", rep, err)
	}
	return g
}

// Calls returns the grace arguments received so far, in order.
func (g *Ganesha) Calls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

// SetRefuse makes later grace calls fail with msg ("" to accept again).
func (g *Ganesha) SetRefuse(msg string) {
	g.mu.Lock()
	g.Refuse = msg
	g.mu.Unlock()
}

// SetDelay holds later grace replies back by d.
func (g *Ganesha) SetDelay(d time.Duration) {
	g.mu.Lock()
	g.Delay = d
	g.mu.Unlock()
}

// OnGrace runs f with the argument of each later grace call, before
// the reply (nil: nothing).
func (g *Ganesha) OnGrace(f func(arg string)) {
	g.mu.Lock()
	g.onGrace = f
	g.mu.Unlock()
}

// Close drops the connection, and with it the name.
func (g *Ganesha) Close() { g.conn.Close() }
