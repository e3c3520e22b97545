// Command floor is the benchmark's floor for an agent's monitor: a bare Go
// program that starts, makes one netlink address dump (RTM_GETADDR, all
// families) and exits. No agent can check an address for less.
package main

import (
	"os"
	"syscall"
)

func main() {
	if _, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_UNSPEC); err != nil {
		os.Exit(1)
	}
}
