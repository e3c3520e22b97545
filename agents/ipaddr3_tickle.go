package agents

// The tickle side of IPaddr3: the hooks ipaddr3.go calls, implemented over
// package tickle. CONTRACT (being filled in by the tickle work; until then
// these are no-ops and tickleParams is empty):
//   - tickleParams are appended to IPaddr3's parameters.
//   - tickleTakeover runs in start after the address is up and the first
//     announcement round is out; it sends the first tickle round before
//     start returns.
//   - tickleKeep runs in IPaddr3's long-lived keeper process (the one that
//     sends the later announcement rounds) until ctx ends: it keeps the
//     recorded connection list fresh and sends the later tickle rounds.
//   - tickleRelease runs in stop before the address is removed: it records
//     the final list and resets the local sockets on the address.

import (
	"context"
	"net/netip"

	"github.com/storhaug/storhaug/ocf"
)

// vipTarget is the address IPaddr3 manages, as the tickle hooks see it.
type vipTarget struct {
	Addr      netip.Addr
	Link      string // the interface the address is on
	Namespace string // network_namespace ("" for the agent's own); see internal/netnsdo
}

var tickleParams = []ocf.Param{}

// tickleWanted reports whether the keeper process is needed for tickles.
func tickleWanted(r *ocf.Request) bool { return false }

func tickleTakeover(r *ocf.Request, t vipTarget) error { return nil }

func tickleKeep(ctx context.Context, r *ocf.Request, t vipTarget) {}

func tickleRelease(r *ocf.Request, t vipTarget) error { return nil }
