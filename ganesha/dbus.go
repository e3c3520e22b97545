// Package ganesha drives NFS-Ganesha for high availability: its D-Bus admin
// interface (grace periods for failover, liveness), the ganesha.nfsd process
// (start, readiness, bounded stop by pid) and the NFS state layout on shared
// storage that lets one node read another node's client records.
//
// It knows nothing of OCF or Pacemaker; package agents wraps it.
package ganesha

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"
)

// The names under which ganesha.nfsd offers its admin interface.
const (
	BusName    = "org.ganesha.nfsd"
	AdminPath  = dbus.ObjectPath("/org/ganesha/nfsd/admin")
	AdminIface = "org.ganesha.nfsd.admin"
)

// DefaultSystemBus is the system bus when DBUS_SYSTEM_BUS_ADDRESS is unset.
const DefaultSystemBus = "unix:path=/run/dbus/system_bus_socket"

var (
	// ErrNotRunning: nobody owns org.ganesha.nfsd on the bus (D-Bus
	// answered ServiceUnknown or NameHasNoOwner): ganesha.nfsd is not
	// running, or it started before the bus and never registered.
	ErrNotRunning = errors.New("ganesha is not running: " + BusName + " has no owner on the bus")
	// ErrNoBus: the message bus itself could not be reached.
	ErrNoBus = errors.New("D-Bus is not reachable")
)

// Event is a grace event, the number before the colon in grace's argument.
type Event int

// The grace events NFS-Ganesha knows.
const (
	JustGrace     Event = 0 // enter grace, nothing else
	ClearBlocked  Event = 1 // cancel blocked NLM locks
	ReleaseIP     Event = 2 // drop the state of clients of an address
	UpdateClients Event = 3 // reload this node's client records
	TakeNodeID    Event = 4 // load node N's client records
	TakeIP        Event = 5 // load the client records under <RecoveryRoot>/<ADDR>
)

// GraceArg is the string grace takes: "EVENT:ADDR". Ganesha splits it at the
// first colon, so an IPv6 address needs no quoting. Events that name a node
// or address refuse an empty one (ganesha would read the wrong directory),
// and the address must be usable as one path component, except in a
// release: ganesha matches a release's argument against the server address
// of its NLM clients and, as a substring, against the owner strings of its
// NFSv4 clients, and an owner string may hold any character but NUL.
func GraceArg(ev Event, addr string) (string, error) {
	if ev < JustGrace || ev > TakeIP {
		return "", fmt.Errorf("grace event %d is unknown (0-5)", int(ev))
	}
	switch ev {
	case ReleaseIP, TakeIP, TakeNodeID:
		if addr == "" {
			return "", fmt.Errorf("grace event %d needs a node name or address", int(ev))
		}
	}
	if ev == TakeNodeID {
		if _, err := strconv.ParseUint(addr, 10, 31); err != nil {
			return "", fmt.Errorf("grace event 4 needs a numeric node id, not %q", addr)
		}
	}
	if strings.ContainsRune(addr, 0) {
		return "", fmt.Errorf("%q: a D-Bus string cannot carry NUL", addr)
	}
	if ev != ReleaseIP && (strings.ContainsAny(addr, "/\n") || addr == "." || addr == "..") {
		return "", fmt.Errorf("%q cannot name a recovery directory", addr)
	}
	return fmt.Sprintf("%d:%s", int(ev), addr), nil
}

// RefusedError is a grace request ganesha answered with status false.
type RefusedError struct {
	Method string // the admin method, e.g. "grace"
	Arg    string // its argument, "" for none
	Msg    string // ganesha's own explanation
}

func (e *RefusedError) Error() string {
	if e.Arg != "" {
		return fmt.Sprintf("ganesha refused %s(%q): %s", e.Method, e.Arg, e.Msg)
	}
	return fmt.Sprintf("ganesha refused %s: %s", e.Method, e.Msg)
}

// Bus is a private connection to a message bus, for talking to ganesha.nfsd.
type Bus struct {
	conn *dbus.Conn
	addr string
}

// SystemBusAddress is the address of the system bus: DBUS_SYSTEM_BUS_ADDRESS,
// else the standard socket.
func SystemBusAddress() string {
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return DefaultSystemBus
}

// Connect opens a private connection to the bus at address ("" for the
// system bus). ctx bounds the connection's whole life: when it ends, the
// connection is closed and calls in flight fail. Failure wraps ErrNoBus.
func Connect(ctx context.Context, address string) (*Bus, error) {
	if address == "" {
		address = SystemBusAddress()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		c   *dbus.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := dbus.Connect(address, dbus.WithContext(ctx))
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("%w at %s: %v", ErrNoBus, address, r.err)
		}
		return &Bus{conn: r.c, addr: address}, nil
	case <-ctx.Done():
		go func() { // the dial goroutine ends when ctx closes its socket
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("%w at %s: no answer before the deadline", ErrNoBus, address)
	}
}

// Address is the bus address this connection uses.
func (b *Bus) Address() string { return b.addr }

// Close closes the connection.
func (b *Bus) Close() error { return b.conn.Close() }

func (b *Bus) call(ctx context.Context, iface, method string, args ...any) (*dbus.Call, error) {
	obj := b.conn.Object(BusName, AdminPath)
	call := obj.CallWithContext(ctx, iface+"."+method, 0, args...)
	if call.Err != nil {
		return nil, b.wrap(ctx, method, call.Err)
	}
	return call, nil
}

func (b *Bus) wrap(ctx context.Context, method string, err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
			return ErrNotRunning
		}
		return fmt.Errorf("%s on %s: %s: %v", method, BusName, de.Name, de.Body)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s on %s: no reply before the deadline", method, BusName)
	}
	return fmt.Errorf("%s on %s: %w", method, BusName, err)
}

// Grace sends grace("EVENT:ADDR") and checks ganesha's answer: a reply with
// status false is a *RefusedError carrying ganesha's message.
func (b *Bus) Grace(ctx context.Context, ev Event, addr string) error {
	arg, err := GraceArg(ev, addr)
	if err != nil {
		return err
	}
	call, err := b.call(ctx, AdminIface, "grace", arg)
	if err != nil {
		return err
	}
	var ok bool
	var msg string
	if err := call.Store(&ok, &msg); err != nil {
		return fmt.Errorf("grace(%q): unexpected reply %v: %v", arg, call.Body, err)
	}
	if !ok {
		return &RefusedError{Method: "grace", Arg: arg, Msg: msg}
	}
	return nil
}

// GetGrace reports whether ganesha is in its grace period.
func (b *Bus) GetGrace(ctx context.Context) (bool, error) {
	call, err := b.call(ctx, AdminIface, "get_grace")
	if err != nil {
		return false, err
	}
	var in, ok bool
	var msg string
	if len(call.Body) >= 3 {
		err = call.Store(&in, &ok, &msg)
	} else { // status-less replies: the first value is what counts
		ok = true
		err = dbus.Store(call.Body[:min(1, len(call.Body))], &in)
	}
	if err != nil {
		return false, fmt.Errorf("get_grace: unexpected reply %v: %v", call.Body, err)
	}
	if !ok {
		return false, &RefusedError{Method: "get_grace", Msg: msg}
	}
	return in, nil
}

// Ping proves that the process owning org.ganesha.nfsd answers on the bus
// (org.freedesktop.DBus.Peer.Ping, which ganesha's D-Bus thread answers
// without touching NFS state).
func (b *Bus) Ping(ctx context.Context) error {
	_, err := b.call(ctx, "org.freedesktop.DBus.Peer", "Ping")
	return err
}

// OwnerPID is the pid of the process that owns org.ganesha.nfsd, as the bus
// daemon sees it (ErrNotRunning when nobody does).
func (b *Bus) OwnerPID(ctx context.Context) (int, error) {
	var pid uint32
	call := b.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixProcessID", 0, BusName)
	if call.Err != nil {
		return 0, b.wrap(ctx, "GetConnectionUnixProcessID", call.Err)
	}
	if err := call.Store(&pid); err != nil {
		return 0, fmt.Errorf("GetConnectionUnixProcessID: %v", err)
	}
	return int(pid), nil
}

// Answers checks that the ganesha.nfsd with this pid owns org.ganesha.nfsd
// and answers on it. pid 0 skips the ownership test.
func (b *Bus) Answers(ctx context.Context, pid int) error {
	if pid != 0 {
		owner, err := b.OwnerPID(ctx)
		if err != nil {
			return err
		}
		if owner != pid {
			return fmt.Errorf("%s is owned by pid %d, not by ganesha.nfsd (pid %d)", BusName, owner, pid)
		}
	}
	return b.Ping(ctx)
}
