package lab

import "fmt"

// Enable makes a service the lab only prepared Started from now on, as
// enabling its unit does on a real machine: Recover and Repair then start it
// on a node that comes back. It is for stacks that run a daemon outside
// Pacemaker (test/stacks' CTDB-native stack). It starts nothing itself; it
// is recorded in the lab's state, but a fence daemon already running keeps
// the options it read (with stonith-action=reboot its boots would not start
// the service).
func (l *Lab) Enable(s Service) error {
	l.mu.Lock()
	switch s {
	case CTDB:
		l.opts.CTDB = Started
	case Samba:
		l.opts.Samba = Started
	case Ganesha:
		l.opts.Ganesha = Started
	default:
		l.mu.Unlock()
		return fmt.Errorf("lab: Enable(%s): only ctdb, smbd and ganesha can be enabled", s)
	}
	l.mu.Unlock()
	return l.saveState()
}
