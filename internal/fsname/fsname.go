// Package fsname makes a file name of a key that may not be one: a
// resource instance ("rsc:1", "group/rsc"), an IPv6 address, a namespace
// path. It is the one place that escapes them.
package fsname

import "strings"

var escape = strings.NewReplacer("/", "_", ":", "_", "\x00", "_")

// Key returns s with the characters a file name (on every shared file
// system) cannot hold, or that a path would read as a directory, written
// as underscores: the colons of an IPv6 address ("2001_db8__10"), the
// slashes of a path, NUL.
func Key(s string) string { return escape.Replace(s) }
