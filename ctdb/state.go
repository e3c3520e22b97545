package ctdb

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/storhaug/storhaug/internal/atomicfile"
)

// State is what a node's manager keeps between its actions: what its
// setup replaced (for the stop to restore), the daemon's and the leader
// watch's pids, and what it learnt of the node and the tool.
type State struct {
	Undo
	PID        int    `json:"pid,omitempty"`
	PNN        int    `json:"pnn"`
	WatchPID   int    `json:"watch_pid,omitempty"`
	Naming     string `json:"naming,omitempty"`
	Version    string `json:"version,omitempty"`
	Promotable bool   `json:"promotable,omitempty"`
	// Started is when this node's ctdbd was seen started; PeerStarts,
	// when another node's manager was told (by node name) its own started.
	Started time.Time `json:"started,omitzero"`
	// Healthy is when this node was first seen healthy after Started
	// (before Started: not since).
	Healthy    time.Time            `json:"healthy,omitzero"`
	PeerStarts map[string]time.Time `json:"peer_starts,omitempty"`
	// StopPNNs are the pnns of peers about to stop, read before their
	// stop (and fencing) so that the survivors need not read them after.
	StopPNNs map[string]PeerPNN `json:"stop_pnns,omitempty"`
}

// PeerPNN is a peer's pnn as read at a time.
type PeerPNN struct {
	PNN int       `json:"pnn"`
	At  time.Time `json:"at"`
}

// LoadState reads the state kept at path; ok is false (and the state
// empty, with an unknown pnn) when there is none or it cannot be read.
func LoadState(path string) (s *State, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return &State{PNN: UnknownPNN}, false
	}
	var st State
	if json.Unmarshal(b, &st) != nil {
		return &State{PNN: UnknownPNN}, false
	}
	return &st, true
}

// Save writes the state to path atomically.
func (s *State) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}
