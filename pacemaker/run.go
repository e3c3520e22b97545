package pacemaker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs Pacemaker's command-line tools.
type Runner interface {
	// Run runs name with args, stdin as its input, and returns its
	// standard output; a non-zero exit is an *ExitError.
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

// ExitError is a tool that exited non-zero.
type ExitError struct {
	Cmd    string
	Code   int
	Stdout []byte
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(string(e.Stdout))
	}
	if len(msg) > 600 {
		msg = msg[:600] + "..."
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.Cmd, e.Code, msg)
}

// Exec runs the tools as subprocesses; they honour CIB_file and the rest of
// the environment.
type Exec struct{}

// Run implements Runner.
func (Exec) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.Bytes(), &ExitError{Cmd: name + " " + strings.Join(args, " "), Code: ee.ExitCode(), Stdout: out.Bytes(), Stderr: errb.String()}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out.Bytes(), nil
}
