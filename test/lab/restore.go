package lab

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// RestoreConfigs puts /etc/ctdb, /etc/samba and /etc/ganesha of every
// running node back to what the lab prepared (the host's files plus the
// lab's configuration), for the services the lab only prepared and whose
// daemons are not running: a test (or an agent killed half-way) may have
// rewritten ctdb.conf, enabled event scripts or left files behind. It
// returns what it changed ("n1:/etc/ctdb/ctdb.conf"), and logs it.
func (l *Lab) RestoreConfigs() ([]string, error) {
	dirs := map[string]Service{"ctdb": CTDB, "samba": Samba, "ganesha": Ganesha}
	names := []string{"ctdb", "samba", "ganesha"}
	var changed []string
	for _, n := range l.nodes {
		if !n.Alive() {
			continue
		}
		files := l.etcFiles(n)
		for _, dir := range names {
			s := dirs[dir]
			if l.mode(s) != Prepared || n.running(services[s].procs...) {
				continue
			}
			want := map[string]string{}
			for rel, c := range files {
				if strings.HasPrefix(rel, dir+"/") {
					want[strings.TrimPrefix(rel, dir+"/")] = c
				}
			}
			root, err := n.Path("/etc/" + dir)
			if err != nil {
				return changed, err
			}
			ch, err := syncDir(root, "/etc/"+dir, want)
			for _, c := range ch {
				changed = append(changed, n.name+":/etc/"+dir+"/"+c)
			}
			if err != nil {
				return changed, err
			}
		}
	}
	if len(changed) > 0 {
		l.logf("restored configuration: %v", changed)
	}
	return changed, nil
}

// syncDir makes the tree at dst (a node's view) equal to the tree at src
// (the host's) with the files in over (relative path -> content) on top:
// extra entries are removed, differing ones rewritten. It returns the
// relative paths it changed.
func syncDir(dst, src string, over map[string]string) ([]string, error) {
	type entry struct {
		mode    fs.FileMode
		link    string
		content []byte
	}
	want := map[string]entry{".": {mode: fs.ModeDir | 0o755}}
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		info, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		e := entry{mode: info.Mode()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.link, _ = os.Readlink(p)
		case info.Mode().IsRegular():
			e.content, _ = os.ReadFile(p)
		}
		want[rel] = e
		return nil
	})
	for rel, c := range over {
		for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
			if _, ok := want[d]; !ok {
				want[d] = entry{mode: fs.ModeDir | 0o755}
			}
		}
		want[rel] = entry{mode: 0o644, content: []byte(c)}
	}
	var changed []string
	// Remove what should not be there (or has the wrong type).
	var have []string
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dst {
			rel, _ := filepath.Rel(dst, p)
			have = append(have, rel)
		}
		return nil
	})
	sort.Sort(sort.Reverse(sort.StringSlice(have))) // children before parents
	for _, rel := range have {
		info, err := os.Lstat(filepath.Join(dst, rel))
		if err != nil {
			continue
		}
		w, ok := want[rel]
		if ok && w.mode.Type() == info.Mode().Type() {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dst, rel)); err != nil {
			return changed, err
		}
		changed = append(changed, rel)
	}
	// Make what is missing or differs, parents first.
	rels := make([]string, 0, len(want))
	for rel := range want {
		if rel != "." {
			rels = append(rels, rel)
		}
	}
	sort.Strings(rels)
	for _, rel := range rels {
		w := want[rel]
		p := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		switch {
		case w.mode.IsDir():
			if err != nil {
				if err := os.Mkdir(p, w.mode.Perm()); err != nil {
					return changed, err
				}
				changed = append(changed, rel)
			}
		case w.mode&fs.ModeSymlink != 0:
			if cur, _ := os.Readlink(p); err != nil || cur != w.link {
				os.Remove(p)
				if err := os.Symlink(w.link, p); err != nil {
					return changed, err
				}
				changed = append(changed, rel)
			}
		case w.mode.IsRegular():
			cur, rerr := os.ReadFile(p)
			if err != nil || rerr != nil || !bytes.Equal(cur, w.content) {
				if err := writeFile(p, w.content, w.mode.Perm()); err != nil {
					return changed, fmt.Errorf("restore %s: %w", p, err)
				}
				changed = append(changed, rel)
			} else if info.Mode().Perm() != w.mode.Perm() {
				os.Chmod(p, w.mode.Perm())
			}
		}
	}
	return changed, nil
}
