package sdk

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/plugins/internal/proctree"
)

// hostGoneSignal replaces SIGKILL as the plugin's parent-death signal (SIGRTMIN+6), so that the
// plugin can kill its descendants before it exits when its host dies without warning.
const hostGoneSignal = syscall.Signal(40)

// init runs on the process's main thread, the one a troupe host forked with a parent-death
// signal (SIGKILL): that signal is a property of the thread, so only here can it be replaced.
// It is replaced only under a troupe host (its magic cookie is set), which forks plugins from a
// thread that lives exactly as long as they do; any other parent may fork from a thread that
// ends earlier, and a parent-death signal would then kill a healthy process.
func init() {
	if os.Getenv(ipc.MagicCookieKey) != ipc.MagicCookieValue {
		return
	}
	// The plugin becomes the subreaper of its descendants: a process whose parent exits (a
	// daemon's double fork) is reparented to the plugin rather than to init, so it stays among
	// the plugin's descendants, where killDescendants finds it. From init, so that it holds for
	// whatever the plugin starts before Serve.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	var cur int32
	if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&cur)), 0, 0, 0); err != nil || cur == 0 {
		return // the host asked for no parent-death signal
	}
	// Atomic with respect to the host's death: before, SIGKILL came; after, hostGoneSignal will.
	ppid := os.Getppid()
	gone := make(chan os.Signal, 1)
	signal.Notify(gone, hostGoneSignal)
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(hostGoneSignal), 0, 0, 0); err != nil {
		signal.Stop(gone)
		return
	}
	stderr := os.Stderr
	go func() {
		<-gone
		exit(1, stderr, fmt.Sprintf("host process %d died; exiting", ppid))
	}()
}

// killDescendants sends SIGKILL to every live process below the plugin, and to every other
// process of its process group when the plugin leads it (a troupe host starts it so; a group
// the plugin does not lead is its host's), until none is left (each round finds the orphans of the
// previous one, reparented to us as their subreaper). It is bounded: a descendant forking
// faster than we kill is caught by a later round or, under a troupe host with cgroup v2, by
// the host killing the plugin's cgroup.
func killDescendants() {
	self := os.Getpid()
	pgrp := syscall.Getpgrp()
	for round := 0; round < 20; round++ {
		procs := proctree.Read()
		victims := procs.Descendants(self)
		if pgrp == self {
			below := map[int]bool{self: true}
			for _, pid := range victims {
				below[pid] = true
			}
			for pid, p := range procs {
				if p.PGRP == pgrp && !below[pid] {
					victims = append(victims, pid)
				}
			}
		}
		live := 0
		for _, pid := range victims {
			if procs[pid].Live() {
				live++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if live == 0 {
			return
		}
	}
}
