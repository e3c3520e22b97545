package ocf

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Type is a parameter's content type.
type Type int

// Parameter content types. Select is rendered as a string in OCF 1.0
// meta-data, with its options named in the long description.
const (
	String Type = iota
	Integer
	Boolean
	Select
)

func (t Type) String() string {
	switch t {
	case Integer:
		return "integer"
	case Boolean:
		return "boolean"
	case Select:
		return "select"
	}
	return "string"
}

// Param declares one resource parameter.
type Param struct {
	Name       string
	Type       Type
	Default    string // the value when the parameter is unset; "" for none
	Required   bool
	Unique     bool
	Reloadable bool     // may change without a restart (OCF 1.1 reload-agent)
	Options    []string // the allowed values of a Select parameter
	// Aliases are older names still accepted for this parameter; using one
	// logs a deprecation warning.
	Aliases []string
	// Deprecated, when not empty, says why the parameter should no longer be
	// used (and what replaces it); setting it logs that as a warning.
	Deprecated string
	ShortDesc  string
	LongDesc   string
}

// Action declares one action as meta-data advertises it. An action may be
// declared more than once (a monitor for each role); only the first
// declaration of a name needs a Handler.
type Action struct {
	Name     string
	Timeout  time.Duration
	Interval time.Duration
	Depth    int
	Role     string // "", "Promoted" or "Unpromoted"
	Handler  func(*Request) error
	// Hidden actions are for the agent's own use (such as a helper process
	// it re-executes itself as): dispatched, but not in meta-data or usage.
	Hidden bool
}

// Agent is the declaration of a resource agent.
type Agent struct {
	Name      string
	Version   string // the agent's own version, as meta-data reports it
	ShortDesc string
	LongDesc  string
	Params    []Param
	Actions   []Action
}

// Param returns the declaration of the named parameter, or nil.
func (a *Agent) Param(name string) *Param {
	for i := range a.Params {
		if a.Params[i].Name == name {
			return &a.Params[i]
		}
	}
	return nil
}

func (a *Agent) handler(action string) (*Action, bool) {
	for i := range a.Actions {
		if a.Actions[i].Name == action && a.Actions[i].Handler != nil {
			return &a.Actions[i], true
		}
	}
	return nil, false
}

// ActionNames returns the names of the actions the agent implements,
// meta-data and usage included, sorted.
func (a *Agent) ActionNames() []string {
	seen := map[string]bool{"meta-data": true, "usage": true}
	for _, act := range a.Actions {
		if act.Handler != nil && !act.Hidden {
			seen[act.Name] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Env looks up an environment variable, as os.LookupEnv does.
type Env func(name string) (string, bool)

// Main runs the agent with the process's arguments (args[0] is the action)
// and environment, and exits with the OCF exit code.
func Main(a *Agent, args []string) {
	os.Exit(int(a.Run(context.Background(), args, os.LookupEnv, os.Stdout, os.Stderr)))
}

// Run dispatches one invocation: args[0] is the action. It returns the exit
// code; meta-data and usage go to stdout, logs and the exit reason to stderr.
// Parameters that are missing or malformed are OCF_ERR_CONFIGURED, naming
// the parameter, except for stop (success: nothing can have been started
// with them) and probes (not running); the handler does not run then.
func (a *Agent) Run(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) Code {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	getenv := func(k string) string { v, _ := env(k); return v }
	if len(args) == 0 || args[0] == "" {
		a.usage(stderr)
		return ErrArgs
	}
	action := args[0]
	switch action {
	case "meta-data":
		if err := a.WriteMetaData(stdout, wants11(getenv)); err != nil {
			return ErrGeneric
		}
		return Success
	case "usage", "help":
		a.usage(stdout)
		return Success
	}

	r := newRequest(a, action, getenv, stderr)
	defer r.Log.Close()
	act, ok := a.handler(action)
	if !ok {
		r.exitReason(fmt.Sprintf("action %q is not implemented by %s", action, a.Name))
		return ErrUnimplemented
	}
	r.timeout = r.opTimeout(act)
	if err := r.loadParams(); err != nil {
		// Nothing can have been started with parameters that do not even
		// parse (start would have refused them), so a stop has nothing to
		// do and a probe finds nothing running. Failing them instead would
		// get the node fenced (stop) or hide the error that start reports.
		switch {
		case action == "stop":
			r.Log.Warnf("%v: nothing can have been started with these parameters: nothing to stop", err)
			return Success
		case r.IsProbe():
			r.Log.Warnf("%v: nothing can be running with these parameters", err)
			return NotRunning
		}
		return r.finish(err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout-safetyMargin(r.timeout))
	defer cancel()
	r.ctx = ctx
	return r.finish(r.call(act.Handler))
}

// call runs the handler. A panic becomes OCF_ERR_GENERIC (a soft failure)
// with the stack in the log: left alone it would exit with status 2, which
// Pacemaker reads as OCF_ERR_ARGS and bans the node.
func (r *Request) call(h func(*Request) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.Log.Errorf("panic in %s: %v\n%s", r.Action, p, debug.Stack())
			err = Errorf(ErrGeneric, "%s %s: internal error: %v", r.agent.Name, r.Action, p)
		}
	}()
	return h(r)
}

// wants11 reports whether the caller speaks OCF 1.1 (Pacemaker 2.1 exports
// OCF_RA_VERSION_MAJOR=1 and OCF_RA_VERSION_MINOR=1; ocf-tester neither).
func wants11(getenv func(string) string) bool {
	major := strings.TrimSpace(getenv("OCF_RA_VERSION_MAJOR"))
	if major != "" && major != "1" {
		return false
	}
	minor, err := strconv.Atoi(strings.TrimSpace(getenv("OCF_RA_VERSION_MINOR")))
	return err == nil && minor >= 1
}

func (a *Agent) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s {%s}\n", a.Name, strings.Join(a.ActionNames(), "|"))
}

// safetyMargin is the part of an operation's timeout kept back so that the
// agent can report its own failure before Pacemaker kills it: a tenth of the
// timeout, at least 500 ms and at most 5 s, and never more than half.
func safetyMargin(timeout time.Duration) time.Duration {
	m := timeout / 10
	m = max(m, 500*time.Millisecond)
	m = min(m, 5*time.Second)
	return min(m, timeout/2)
}

// MapEnv returns an Env that looks names up in m, for tests and for callers
// that build an agent's environment themselves.
func MapEnv(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
