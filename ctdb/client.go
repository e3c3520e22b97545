package ctdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Runner runs a program to completion. Tests replace it with a fake.
type Runner interface {
	// Run returns the program's output and exit status; err is for a
	// program that could not run or was ended by ctx.
	Run(ctx context.Context, env []string, name string, args ...string) (stdout, stderr []byte, status int, err error)
}

// Exec runs programs with os/exec.
type Exec struct{}

// Run implements Runner. env is added to the process's own environment.
func (Exec) Run(ctx context.Context, env []string, name string, args ...string) ([]byte, []byte, int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if len(env) > 0 {
		cmd.Env = append(cmd.Environ(), env...)
	}
	// A process group of its own: when its -T limit strikes, the ctdb
	// tool sends SIGTERM to its whole process group, which would otherwise
	// be the agent's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return out.Bytes(), errb.Bytes(), ee.ExitCode(), nil
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%s %s: no answer within its time limit: %w", name, strings.Join(args, " "), ctx.Err())
	}
	return out.Bytes(), errb.Bytes(), 0, err
}

// ErrNotRunning is returned when ctdbd is not running on this node: its
// socket is missing or refuses connections.
var ErrNotRunning = errors.New("ctdbd is not running")

// Tool calls the ctdb command line tool.
type Tool struct {
	Path    string        // the ctdb binary
	Socket  string        // CTDB_SOCKET for the tool; "" for its built-in default
	Timeout time.Duration // the limit of each call (ctdb -t and -T, and a kill after)
	Naming  Naming
	Runner  Runner
}

// call runs "ctdb ARGS" with the tool's own time limit. status is the
// tool's exit status; a failure to reach the daemon is ErrNotRunning.
func (t *Tool) call(ctx context.Context, args ...string) (out []byte, status int, err error) {
	to := t.Timeout
	if to <= 0 {
		to = 10 * time.Second
	}
	secs := int((to + time.Second - 1) / time.Second)
	// -t bounds each wait for the daemon (and the wait for a leader
	// broadcast); -T, a second later, the whole run; the context kills the
	// tool a second after that.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+2)*time.Second)
	defer cancel()
	full := append([]string{"-t", strconv.Itoa(secs), "-T", strconv.Itoa(secs + 1)}, args...)
	var env []string
	if t.Socket != "" {
		env = []string{"CTDB_SOCKET=" + t.Socket}
	}
	r := t.Runner
	if r == nil {
		r = Exec{}
	}
	stdout, stderr, status, err := r.Run(ctx, env, t.Path, full...)
	if err != nil {
		return stdout, status, err
	}
	if status != 0 && notRunning(stderr) {
		return stdout, status, ErrNotRunning
	}
	if status != 0 && len(stdout) == 0 {
		msg := clip(stderr)
		if msg == "" {
			msg = "exit status " + strconv.Itoa(status)
		}
		return stdout, status, fmt.Errorf("ctdb %s: %s", strings.Join(args, " "), msg)
	}
	return stdout, status, nil
}

// notRunning recognises the tool's words for a daemon that is not there:
// "connect() failed, errno=111" (refused: a stale socket) or errno=2 (no
// socket), "Failed to connect to CTDB daemon".
func notRunning(stderr []byte) bool {
	s := string(stderr)
	return strings.Contains(s, "Failed to connect to CTDB daemon") ||
		strings.Contains(s, "errno=111") || strings.Contains(s, "errno=2\n") ||
		strings.Contains(s, "Connection refused") || strings.Contains(s, "No such file or directory")
}

// NodeStatus returns this node's row of "ctdb -X nodestatus", the
// cheapest call that tells the node's health. The tool exits non-zero when
// the node is not healthy; that is not an error here.
func (t *Tool) NodeStatus(ctx context.Context) (Node, error) {
	out, _, err := t.call(ctx, "-X", "nodestatus")
	if err != nil {
		return Node{}, err
	}
	nodes, err := ParseNodes(out)
	if err != nil {
		return Node{}, err
	}
	return ThisNode(nodes)
}

// Nodes returns every node's row of "ctdb -X status".
func (t *Tool) Nodes(ctx context.Context) ([]Node, error) {
	out, _, err := t.call(ctx, "-X", "status")
	if err != nil {
		return nil, err
	}
	return ParseNodes(out)
}

// Leader asks for the leader's pnn (UnknownPNN when there is none). The
// tool waits for the leader's next broadcast: up to a second.
func (t *Tool) Leader(ctx context.Context) (int, error) {
	out, _, err := t.call(ctx, t.Naming.LeaderCommand())
	if err != nil {
		return 0, err
	}
	return ParseLeader(out)
}

// SetLeaderRole gives this node the leader capability, or takes it away
// (which makes a leader yield the role).
func (t *Tool) SetLeaderRole(ctx context.Context, on bool) error {
	v := "off"
	if on {
		v = "on"
	}
	_, status, err := t.call(ctx, t.Naming.RoleCommand(), v)
	if err == nil && status != 0 {
		err = fmt.Errorf("ctdb %s %s: exit status %d", t.Naming.RoleCommand(), v, status)
	}
	return err
}

// Shutdown asks ctdbd to shut down.
func (t *Tool) Shutdown(ctx context.Context) error {
	_, status, err := t.call(ctx, "shutdown")
	if err == nil && status != 0 {
		err = fmt.Errorf("ctdb shutdown: exit status %d", status)
	}
	return err
}

// Version returns the tool's release.
func (t *Tool) Version(ctx context.Context) (Version, error) {
	out, _, err := t.call(ctx, "version")
	if err != nil {
		return Version{}, err
	}
	return ParseVersion(out)
}

// Usage returns the tool's command list (printed when it is given none).
func (t *Tool) Usage(ctx context.Context) []byte {
	r := t.Runner
	if r == nil {
		r = Exec{}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, errb, _, _ := r.Run(ctx, nil, t.Path)
	return append(out, errb...)
}

// ScriptStatus returns the state of the last monitor event.
func (t *Tool) ScriptStatus(ctx context.Context) (ScriptStatus, error) {
	out, _, err := t.call(ctx, "scriptstatus")
	if err != nil {
		return ScriptStatus{}, err
	}
	return ParseScriptStatus(out), nil
}
