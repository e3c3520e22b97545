// Package ctdb runs and watches ctdbd, Samba's clustered database daemon,
// for one node: it renders the keys of ctdb.conf and smb.conf that the
// node's manager owns (keeping the admin's own), enables event scripts,
// checks persistent databases before a start, starts ctdbd and stops it by
// its own pid, and reads the node's state from the ctdb tool's
// machine-readable output ("ctdb -X"). Every ctdb call has its own short
// timeout, independent of the caller's deadline.
//
// It understands both namings of the cluster's leader role: "leader"
// (CTDB 4.16 and later) and "recmaster" (older releases), detected once
// from the installed tool. The leader itself is learnt as ctdbd announces
// it: the leader broadcasts its pnn every second (see [WatchLeader]).
//
// It knows nothing of OCF or Pacemaker.
package ctdb
