package ctdb

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// CorruptError names a persistent database that failed its check.
type CorruptError struct {
	File   string
	Detail string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("persistent database %s is corrupt (%s); ctdbd is not started: restore it from a healthy node or remove it", e.File, e.Detail)
}

// CheckPersistent reads every persistent database in dir (NAME.tdb.PNN)
// with tdbdump, which fails on a database it cannot walk. Each check is
// bounded by perFile and all by ctx.
func CheckPersistent(ctx context.Context, r Runner, tdbdump, dir string, perFile time.Duration) (int, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.tdb.*"))
	sort.Strings(files)
	for _, f := range files {
		c, cancel := context.WithTimeout(ctx, perFile)
		_, stderr, status, err := r.Run(c, nil, tdbdump, f)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("checking persistent databases: %w", ctx.Err())
			}
			return 0, &CorruptError{File: f, Detail: err.Error()}
		}
		if status != 0 {
			d := strings.TrimSpace(string(stderr))
			if d == "" {
				d = fmt.Sprintf("tdbdump exit status %d", status)
			}
			return 0, &CorruptError{File: f, Detail: clip([]byte(d))}
		}
	}
	return len(files), nil
}
