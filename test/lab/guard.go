package lab

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// The guard: with Options.Guard, Up starts a small process of its own (this
// program again, with guardEnv set, in a session of its own so that a ^C
// to the test does not reach it) that holds the read end of a pipe. If the
// process that brought the lab up dies in any way (a panic in a test, a
// test timeout, SIGKILL), the pipe closes and the guard sweeps the lab.
// Down tells it "done" first, and it exits without doing anything.
const guardEnv = "STORHAUG_LAB_GUARD"

func init() {
	if prefix := os.Getenv(guardEnv); prefix != "" {
		os.Exit(guardMain(prefix))
	}
}

func guardMain(prefix string) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	b, _ := io.ReadAll(os.Stdin)
	if strings.TrimSpace(string(b)) == "done" {
		return 0
	}
	fmt.Fprintf(os.Stderr, "lab guard: the process that brought lab %s up is gone: sweeping\n", prefix)
	if err := Sweep(prefix); err != nil {
		fmt.Fprintf(os.Stderr, "lab guard: %v\n", err)
		return 1
	}
	return 0
}

type guard struct {
	w   *os.File
	cmd *exec.Cmd
}

func startGuard(prefix string) (*guard, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(self)
	cmd.Args = []string{"storhaug-lab-guard:" + prefix}
	cmd.Env = append(append([]string(nil), baseEnv...), guardEnv+"="+prefix)
	cmd.Dir = "/"
	cmd.Stdin = r
	// The guard's messages go to the test's stderr, where they are seen.
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, err
	}
	go cmd.Wait()
	return &guard{w: w, cmd: cmd}, nil
}

// release tells the guard not to sweep and lets it exit.
func (g *guard) release() {
	if g == nil {
		return
	}
	io.WriteString(g.w, "done\n")
	g.w.Close()
}
