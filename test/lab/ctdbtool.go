package lab

import (
	"context"
	"errors"
	"time"

	"github.com/storhaug/storhaug/ctdb"
)

// CTDB returns the ctdb tool of the node (package ctdb's Tool): every call
// runs `ctdb` inside the node. This is the lab's one place for calling the
// ctdb tool from Go; timeout bounds each call. The tool's naming of the
// leader role is taken from the installed release once, by the first
// caller that asks for it (ctdb.Tool.Detect is for nodes' own caches).
func (n *Node) CTDB(ctx context.Context, timeout time.Duration) (*ctdb.Tool, error) {
	t := &ctdb.Tool{Path: "ctdb", Timeout: timeout, Runner: nodeRunner{n}}
	v, err := t.Version(ctx)
	if err != nil {
		return nil, err
	}
	t.Naming = ctdb.NamingFromUsage(t.Usage(ctx), v)
	return t, nil
}

// nodeRunner runs a program inside a node (ctdb.Runner).
type nodeRunner struct{ n *Node }

func (r nodeRunner) Run(ctx context.Context, env []string, name string, args ...string) ([]byte, []byte, int, error) {
	res, err := r.n.Exec(ctx, env, name, args...)
	var ee *ExitError
	if errors.As(err, &ee) {
		err = nil
	}
	return []byte(res.Stdout), []byte(res.Stderr), res.Code, err
}
