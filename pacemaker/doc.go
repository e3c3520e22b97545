// Package pacemaker is storhaug's one way of speaking to Pacemaker, through
// its own command-line tools: node attributes (crm_attribute), the CIB
// (cibadmin) and the cluster's state (crm_mon's XML, modelled as
// [ClusterState]). Every call goes through a [Runner], so that tests and
// offline work (CIB_file) need no cluster.
//
// It knows nothing of OCF, nor of what storhaug writes into the CIB
// (package setup builds that).
package pacemaker
