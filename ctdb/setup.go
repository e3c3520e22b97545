package ctdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/storhaug/storhaug/internal/atomicfile"
)

// Setup is what a node's manager wants of CTDB's configuration: the keys
// of ctdb.conf and script.options it owns, the legacy event scripts on or
// off, and the clustering block of smb.conf.
type Setup struct {
	Dir     string    // CTDB's configuration directory (/etc/ctdb)
	DataDir string    // where CTDB ships its event scripts (/usr/share/ctdb)
	Conf    []Setting // ctdb.conf keys
	Options []Setting // script.options variables
	Scripts map[string]bool
	// With ManageSamba, SmbConf gets the clustering block Samba
	// describes; Restore removes it from SmbConf.
	ManageSamba bool
	SmbConf     string
	Samba       SambaSettings
	// Warn hears of what failed without failing the setup: an event
	// script that could not be disabled.
	Warn func(error)
}

// Undo is what [Setup.Apply] replaced, kept (as JSON) until [Setup.Restore].
type Undo struct {
	Conf    []Change `json:"conf,omitempty"`
	Options []Change `json:"script_options,omitempty"`
	Scripts []Script `json:"scripts,omitempty"` // previous states of the scripts changed
	Samba   bool     `json:"samba,omitempty"`
}

// MissingError is a setup step that failed for want of something CTDB or
// Samba should have installed: an event script, smb.conf.
type MissingError struct{ Err error }

func (e *MissingError) Error() string { return e.Err.Error() }
func (e *MissingError) Unwrap() error { return e.Err }

// Apply writes ctdb.conf, script.options, the event script links and the
// smb.conf block, each file atomically, recording in u what it replaced.
// u keeps what an earlier Apply that was never restored replaced.
func (s *Setup) Apply(u *Undo) error {
	confPath := filepath.Join(s.Dir, "ctdb.conf")
	old, err := os.ReadFile(confPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot read %s: %w", confPath, err)
	}
	conf := ParseConf(old)
	ch := conf.Apply(s.Conf)
	if len(ch) > 0 {
		if err := writeKeepMode(confPath, conf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", confPath, err)
		}
	}
	u.Conf = MergeChanges(u.Conf, ch)

	optPath := filepath.Join(s.Dir, "script.options")
	oldOpt, err := os.ReadFile(optPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot read %s: %w", optPath, err)
	}
	opts := ParseShellVars(oldOpt)
	och := opts.Apply(s.Options)
	if len(och) > 0 {
		if err := writeKeepMode(optPath, opts.Bytes(), 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", optPath, err)
		}
	}
	u.Options = MergeChanges(u.Options, och)

	for name, on := range s.Scripts {
		was, changed, err := SetScript(s.Dir, s.DataDir, name, on)
		if err != nil {
			if !on {
				if s.Warn != nil {
					s.Warn(fmt.Errorf("cannot disable event script %s: %w", name, err))
				}
				continue
			}
			return &MissingError{fmt.Errorf("cannot enable event script %s: %w", name, err)}
		}
		if changed && !hasScript(u.Scripts, name) {
			u.Scripts = append(u.Scripts, Script{Name: name, Enabled: was})
		}
	}

	if s.ManageSamba {
		b, err := os.ReadFile(s.SmbConf)
		if err != nil {
			return &MissingError{fmt.Errorf("smb.conf: %w", err)}
		}
		if nb := ApplySamba(b, s.Samba); string(nb) != string(b) {
			if err := writeKeepMode(s.SmbConf, nb, 0o644); err != nil {
				return fmt.Errorf("cannot write %s: %w", s.SmbConf, err)
			}
		}
		u.Samba = true
	}
	return nil
}

// Restore undoes what u records, leaving alone what the admin changed
// since.
func (s *Setup) Restore(u *Undo) error {
	var errs []error
	if len(u.Conf) > 0 {
		p := filepath.Join(s.Dir, "ctdb.conf")
		if b, err := os.ReadFile(p); err == nil {
			conf := ParseConf(b)
			conf.Restore(u.Conf)
			errs = append(errs, writeKeepMode(p, conf.Bytes(), 0o644))
		}
	}
	if len(u.Options) > 0 {
		p := filepath.Join(s.Dir, "script.options")
		if b, err := os.ReadFile(p); err == nil {
			o := ParseShellVars(b)
			o.Restore(u.Options)
			errs = append(errs, writeKeepMode(p, o.Bytes(), 0o644))
		}
	}
	for _, sc := range u.Scripts {
		if _, _, err := SetScript(s.Dir, s.DataDir, sc.Name, sc.Enabled); err != nil {
			errs = append(errs, err)
		}
	}
	if u.Samba && s.SmbConf != "" {
		if b, err := os.ReadFile(s.SmbConf); err == nil && HasSamba(b) {
			errs = append(errs, writeKeepMode(s.SmbConf, RemoveSamba(b), 0o644))
		}
	}
	return errors.Join(errs...)
}

func hasScript(list []Script, name string) bool {
	for _, s := range list {
		if s.Name == name {
			return true
		}
	}
	return false
}

// writeKeepMode writes a file atomically, keeping its mode when it exists.
func writeKeepMode(path string, data []byte, def os.FileMode) error {
	if fi, err := os.Stat(path); err == nil {
		def = fi.Mode().Perm()
	}
	return atomicfile.Write(path, data, def)
}
