package pacemaker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Totem is corosync's failure detection as it runs (its runtime
// configuration, after token_coefficient): a node is declared failed when
// the token has not come round for Token, and the new membership forms
// within Consensus. Pacemaker learns of the loss then; fencing follows.
type Totem struct {
	Token     time.Duration
	Consensus time.Duration
}

// Detect is about how long after a node stops the survivors' Pacemaker
// learns it is lost: the token's timeout and the consensus that forms
// the new membership (less the part of the token's round that had
// already passed when it stopped).
func (t Totem) Detect() time.Duration { return t.Token + t.Consensus }

// totemKeys is the runtime map's prefix corosync-cmapctl lists.
const totemKeys = "runtime.config.totem"

// ReadTotem asks the running corosync (corosync-cmapctl, through r).
func ReadTotem(ctx context.Context, r Runner) (Totem, error) {
	out, err := r.Run(ctx, nil, "corosync-cmapctl", totemKeys)
	if err != nil {
		return Totem{}, fmt.Errorf("corosync-cmapctl %s: %w", totemKeys, err)
	}
	return ParseTotem(out)
}

// ParseTotem reads corosync-cmapctl's listing of the runtime totem keys
// ("runtime.config.totem.token (u32) = 3000", milliseconds).
func ParseTotem(out []byte) (Totem, error) {
	ms := map[string]time.Duration{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), " = ")
		if !ok {
			continue
		}
		name, typ, _ := strings.Cut(key, " ")
		name = strings.TrimPrefix(name, totemKeys+".")
		if name != "token" && name != "consensus" {
			continue
		}
		if typ != "(u32)" {
			return Totem{}, fmt.Errorf("corosync totem.%s: type %s, want (u32)", name, typ)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 32)
		if err != nil {
			return Totem{}, fmt.Errorf("corosync totem.%s: %w", name, err)
		}
		ms[name] = time.Duration(n) * time.Millisecond
	}
	t := Totem{Token: ms["token"], Consensus: ms["consensus"]}
	if t.Token == 0 || t.Consensus == 0 {
		return Totem{}, fmt.Errorf("corosync-cmapctl listed no runtime totem token and consensus")
	}
	return t, nil
}
