// Package version holds storhaug's version, set at build time with
// -ldflags "-X github.com/storhaug/storhaug/internal/version.Version=...".
package version

// Version is storhaug's release version.
var Version = "0.1.0-dev"
