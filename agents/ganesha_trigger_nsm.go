package agents

// ganesha_trigger's SM_NOTIFY helper: the takeover happens before the
// address comes up (the VIP is ordered after the trigger), but SM_NOTIFY
// must come from the address. So the trigger leaves a short-lived helper
// process, the storhaug binary re-executed as
// "ganesha_trigger nsm-notify IP INSTANCE" with the action's environment,
// in a session of its own, which waits until the address is on this node
// and then notifies the NFSv3 clients. It is bounded by the deadline of
// the action that started it (the address not coming up by then ends it
// with a warning); nothing holds up the transition meanwhile.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/storhaug/storhaug/internal/proc"
	"github.com/storhaug/storhaug/ocf"
)

const (
	triggerNSMAction = "nsm-notify"                   // the helper's hidden action
	envNSMStopped    = "STORHAUG_TRIGGER_NSM_STOPPED" // the nodes whose clients are notified
	nsmHelperNice    = 10                             // lower priority than the takeover itself
	nsmLocalPoll     = 20 * time.Millisecond          // how often the helper looks for the address
)

// nsmSpawn starts the helper (tests run it in the process instead).
var nsmSpawn = func(r *ocf.Request, ip netip.Addr, stopped []string) error {
	_, err := proc.Spawn(proc.Helper{
		Args: []string{"ganesha_trigger", triggerNSMAction, ip.String(), r.Instance},
		Env:  append(os.Environ(), envNSMStopped+"="+strings.Join(stopped, " ")),
		Nice: nsmHelperNice,
	})
	return err
}

// startNSM leaves the helper that notifies the NFSv3 clients of the
// stopped nodes once ip is up here.
func startNSM(r *ocf.Request, ip netip.Addr, stopped []string) {
	if r.String("recovery_root") == "" {
		return
	}
	if !ip.IsValid() {
		r.Log.Warnf("parameter ip is not set: the NFSv3 clients of %s are not notified (SM_NOTIFY names the address)", strings.Join(stopped, ", "))
		return
	}
	if err := nsmSpawn(r, ip, stopped); err != nil {
		r.Log.Warnf("NFSv3 clients of %s not notified: cannot start the helper: %v", strings.Join(stopped, ", "), err)
	}
}

// triggerNSMHelper is the helper process.
func triggerNSMHelper(r *ocf.Request) error {
	ip, err := triggerIP(r)
	if err != nil {
		return err
	}
	stopped := strings.Fields(os.Getenv(envNSMStopped))
	if !ip.IsValid() || len(stopped) == 0 {
		return ocf.Errorf(ocf.ErrConfigured, "%s: needs parameter ip and %s", triggerNSMAction, envNSMStopped)
	}
	t0 := time.Now()
	if err := waitLocal(r.Context(), ip); err != nil {
		r.Log.Warnf("NFSv3 clients of %s not notified: %v", strings.Join(stopped, ", "), err)
		return nil
	}
	r.Log.Infof("%s is up here after %v: notifying the NFSv3 clients of %s", ip, time.Since(t0).Round(time.Millisecond), strings.Join(stopped, ", "))
	notifyNSM(r, ip, stopped)
	return nil
}

// waitLocal waits until ip is an address of this host (a socket can be
// bound to it), until ctx ends.
func waitLocal(ctx context.Context, ip netip.Addr) error {
	for {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not come up here before the deadline (%v)", ip, err)
		case <-time.After(nsmLocalPoll):
		}
	}
}
