package ocf

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/storhaug/storhaug/internal/fsname"
)

// DefaultTimeout is an operation's timeout when neither Pacemaker nor the
// action's declaration gives one.
const DefaultTimeout = 20 * time.Second

// Request is one invocation of an agent: the action, its parameters and
// environment, a logger, and a context that ends at the operation's
// deadline (its timeout less a safety margin).
type Request struct {
	Action   string
	Instance string // OCF_RESOURCE_INSTANCE, "" when run by hand
	Log      *Logger

	agent   *Agent
	getenv  func(string) string
	env     Env
	stderr  io.Writer
	values  map[string]*value
	ctx     context.Context
	timeout time.Duration
}

func newRequest(a *Agent, action string, getenv func(string) string, stderr io.Writer) *Request {
	r := &Request{
		Action:   action,
		Instance: getenv("OCF_RESOURCE_INSTANCE"),
		agent:    a,
		getenv:   getenv,
		stderr:   stderr,
		ctx:      context.Background(),
	}
	r.env = func(k string) (string, bool) { v := getenv(k); return v, v != "" }
	r.Log = newLogger(a.Name, r.Instance, getenv, stderr)
	return r
}

func (r *Request) lookup(k string) (string, bool) { return r.env(k) }

// Getenv returns an environment variable as the agent was called with it.
func (r *Request) Getenv(name string) string { return r.getenv(name) }

// Context ends at the operation's deadline.
func (r *Request) Context() context.Context { return r.ctx }

// Timeout is the operation's timeout as Pacemaker set it
// (OCF_RESKEY_CRM_meta_timeout), else the action's declared timeout.
func (r *Request) Timeout() time.Duration { return r.timeout }

// Meta returns a meta attribute Pacemaker passed, OCF_RESKEY_CRM_meta_<name>
// (dashes in name become underscores).
func (r *Request) Meta(name string) string {
	return r.getenv("OCF_RESKEY_CRM_meta_" + strings.ReplaceAll(name, "-", "_"))
}

// Interval is the operation's interval: zero for one-off actions and probes.
func (r *Request) Interval() time.Duration {
	ms, _ := strconv.ParseInt(r.Meta("interval"), 10, 64)
	return time.Duration(ms) * time.Millisecond
}

// IsProbe reports whether this is a probe: a monitor with no interval.
func (r *Request) IsProbe() bool { return r.Action == "monitor" && r.Interval() == 0 }

// CheckLevel is OCF_CHECK_LEVEL (0, 10 or 20): how deep a monitor looks.
func (r *Request) CheckLevel() int {
	n, _ := strconv.Atoi(r.getenv("OCF_CHECK_LEVEL"))
	return n
}

// NodeName is the name of the node the agent runs on, as Pacemaker knows it
// (OCF_RESKEY_CRM_meta_on_node); "" when not run by Pacemaker.
func (r *Request) NodeName() string { return r.Meta("on_node") }

// StateDir is where agents keep state that must not outlive a reboot:
// HA_RSCTMP, by default /run/resource-agents.
func (r *Request) StateDir() string {
	if d := r.getenv("HA_RSCTMP"); d != "" {
		return d
	}
	return "/run/resource-agents"
}

// StateFile is the one naming of an agent's files in [Request.StateDir]:
// "storhaug-AGENT-KEY" and then ext, KEY (the resource instance, an
// address) escaped for a file name (IPv6 colons and slashes as
// underscores).
func (r *Request) StateFile(agent, key, ext string) string {
	return filepath.Join(r.StateDir(), "storhaug-"+agent+"-"+fsname.Key(key)+ext)
}

// Notify describes a notify action: when it happens (Type "pre" or "post"),
// for which operation, and the node names Pacemaker lists for it.
type Notify struct {
	Type      string // pre or post
	Operation string // start, stop, promote or demote
	Start     []string
	Stop      []string
	Active    []string
	Inactive  []string
	Promote   []string
	Demote    []string
	Promoted  []string
	Unpromote []string
}

// Notify returns the notification this action carries.
func (r *Request) Notify() Notify {
	list := func(names ...string) []string {
		for _, n := range names {
			if v := strings.Fields(r.Meta("notify_" + n + "_uname")); len(v) > 0 {
				return v
			}
		}
		return nil
	}
	return Notify{
		Type:      r.Meta("notify_type"),
		Operation: r.Meta("notify_operation"),
		Start:     list("start"),
		Stop:      list("stop"),
		Active:    list("active"),
		Inactive:  list("inactive"),
		Promote:   list("promote"),
		Demote:    list("demote"),
		Promoted:  list("promoted", "master"),
		Unpromote: list("unpromoted", "slave"),
	}
}

// opTimeout is the timeout that bounds this invocation.
func (r *Request) opTimeout(act *Action) time.Duration {
	if ms, err := strconv.ParseInt(r.Meta("timeout"), 10, 64); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return act.timeout()
}

// finish turns a handler's result into the exit code, printing the exit
// reason for failures.
func (r *Request) finish(err error) Code {
	code := CodeOf(err)
	if err == nil {
		return code
	}
	reason := err.Error()
	if e, ok := err.(*Error); ok && e.Reason == "" && e.Err == nil {
		reason = ""
	}
	if reason != "" {
		switch code {
		case NotRunning, RunningPromoted, Success:
			r.Log.Infof("%s", reason)
		default:
			r.Log.Errorf("%s", reason)
		}
		r.exitReason(reason)
	}
	return code
}

// exitReason prints the line Pacemaker reports as the exit reason.
func (r *Request) exitReason(reason string) {
	prefix := r.getenv("OCF_EXIT_REASON_PREFIX")
	if prefix == "" {
		prefix = "ocf-exit-reason:"
	}
	fmt.Fprintf(r.stderr, "%s%s\n", prefix, strings.ReplaceAll(reason, "\n", " "))
}
