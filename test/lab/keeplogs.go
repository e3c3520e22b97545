package lab

import (
	"io"
	"os"
	"path/filepath"
	"strings"
)

// KeepLogsEnv names the environment variable that makes Down copy the lab's
// logs before it removes the lab's directory: when set to a directory, Down
// copies every node's /var/log (<root>/nodes/nX/log), the guests' logs and
// consoles (<root>/guests/kX/*.log) and the fence daemon's log into
// <dir>/<prefix>/, with the same layout, for inspection after the run.
const KeepLogsEnv = "STORHAUG_LAB_KEEP_LOGS"

// keepLogs copies the lab's logs under dir/<prefix>. Errors are returned
// but do not stop the copy of the other files.
func (l *Lab) keepLogs(dir string) error {
	dst := filepath.Join(dir, l.opts.Prefix)
	var first error
	keep := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	copyTree := func(rel string, want func(string) bool) {
		src := filepath.Join(l.root, rel)
		filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
			if err != nil || !info.Mode().IsRegular() || !want(p) {
				return nil
			}
			r, _ := filepath.Rel(l.root, p)
			keep(copyLog(p, filepath.Join(dst, r)))
			return nil
		})
	}
	all := func(string) bool { return true }
	for _, n := range l.nodes {
		copyTree(filepath.Join("nodes", n.name, "log"), all)
	}
	copyTree("guests", func(p string) bool { return strings.HasSuffix(p, ".log") })
	copyTree("fenced.log", all)
	return first
}

func copyLog(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
