package ctdb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/storhaug/storhaug/internal/atomicfile"
)

// ToolInfo is what was learnt of the installed ctdb tool: its release
// and its naming of the leader role ("leader" or "recmaster"), kept in a
// cache file until the tool changes.
type ToolInfo struct {
	BinaryID string `json:"binary_id"`
	Version  string `json:"version"`
	Naming   string `json:"naming"`
}

// BinaryID identifies the installed file at path (its size and time), so
// that a detection made once is redone after an upgrade.
func BinaryID(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", path, fi.Size(), fi.ModTime().UnixNano())
}

// Detect sets t.Naming for the installed tool: from the cache file when
// it describes this very binary, else by asking the tool ("ctdb version"
// and its command list, two calls) and recording the answer in cache. A
// cache that cannot be written is reported with the detection made.
func (t *Tool) Detect(ctx context.Context, cache string) (Version, ToolInfo, error) {
	id := BinaryID(t.Path)
	var ti ToolInfo
	if b, err := os.ReadFile(cache); err == nil && json.Unmarshal(b, &ti) == nil && ti.BinaryID == id && ti.Naming != "" {
		t.Naming = Naming{Leader: ti.Naming == "leader"}
		v, _ := ParseVersion([]byte(ti.Version))
		return v, ti, nil
	}
	v, err := t.Version(ctx)
	if err != nil {
		return v, ToolInfo{}, err
	}
	t.Naming = NamingFromUsage(t.Usage(ctx), v)
	ti = ToolInfo{BinaryID: id, Version: v.String(), Naming: "recmaster"}
	if t.Naming.Leader {
		ti.Naming = "leader"
	}
	b, err := json.Marshal(ti)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(cache), 0o755)
	}
	if err == nil {
		err = atomicfile.Write(cache, b, 0o644)
	}
	if err != nil {
		return v, ti, &CacheError{Path: cache, Err: err}
	}
	return v, ti, nil
}

// CacheError is a detection made but not remembered: the next action
// asks the tool again.
type CacheError struct {
	Path string
	Err  error
}

func (e *CacheError) Error() string {
	return fmt.Sprintf("cannot remember the ctdb tool's release in %s: %v", e.Path, e.Err)
}
func (e *CacheError) Unwrap() error { return e.Err }
