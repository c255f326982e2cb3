package host

import (
	"syscall"

	"github.com/troupe-dev/troupe/plugins/internal/proctree"
)

// Without a cgroup, the host kills a plugin's descendants by walking /proc: the plugin SDK makes
// the plugin the subreaper of its descendants, so a daemon that left the plugin's process group
// stays below the plugin as long as the plugin lives. The walk runs before each SIGKILL the host
// sends; it cannot find what was reparented before (the plugin already dead, or not built with
// the SDK), which only a cgroup contains.

// killTree sends sig to every live descendant of pid (not to pid itself), repeating the walk
// until none is found (bounded), since a process may fork while we kill.
func killTree(pid int, sig syscall.Signal) {
	for round := 0; round < 10; round++ {
		procs := proctree.Read()
		found := 0
		for _, c := range procs.Descendants(pid) {
			if procs[c].Live() {
				found++
				_ = syscall.Kill(c, sig)
			}
		}
		if found == 0 || sig != syscall.SIGKILL {
			return
		}
	}
}
