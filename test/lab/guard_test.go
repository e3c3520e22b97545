package lab

import (
	"context"
	"github.com/storhaug/storhaug/internal/need"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func guardPrefix() string {
	p := DefaultPrefix()
	if len(p) > 8 {
		p = p[:8]
	}
	return p + "gd"
}

// The helper: brings a small lab up with Guard and waits to be killed.
func TestGuardHelper(t *testing.T) {
	if os.Getenv("STORHAUG_LAB_GUARD_HELPER") != "1" {
		t.Skip("helper for TestGuardSweepsWhenOwnerDies")
	}
	_, err := Up(context.Background(), Options{Prefix: guardPrefix(), Nodes: 2, DBus: Started, Guard: true})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("LAB-UP\n")
	time.Sleep(time.Minute)
}

// A process that brought a lab up with Guard dies by SIGKILL: the guard
// sweeps the lab (nodes, namespaces, directory).
func TestGuardSweepsWhenOwnerDies(t *testing.T) {
	need.Root(t, "the lab")
	prefix := guardPrefix()
	t.Cleanup(func() { Sweep(prefix) })
	cmd := exec.Command(os.Args[0], "-test.run=^TestGuardHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "STORHAUG_LAB_GUARD_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var got string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		n, err := out.Read(buf)
		got += string(buf[:n])
		if err != nil || strings.Contains(got, "LAB-UP") {
			break
		}
	}
	if !strings.Contains(got, "LAB-UP") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not bring the lab up: %s", got)
	}
	l, err := Attach(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes() {
		if !n.Alive() || !n.Running("dbus-daemon") {
			t.Fatalf("%s not up", n.Name())
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	err = WaitFor(context.Background(), "the guard to sweep", 20*time.Second, func() (bool, error) {
		return len(Leftovers(prefix)) == 0, nil
	})
	if err != nil {
		t.Fatalf("%v: %v", err, Leftovers(prefix))
	}
}
