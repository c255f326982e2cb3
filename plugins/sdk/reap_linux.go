package sdk

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/troupe-dev/troupe/ipc"
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
		procs := readProcs()
		children := map[int][]int{}
		for pid, p := range procs {
			children[p.ppid] = append(children[p.ppid], pid)
		}
		var victims []int
		seen := map[int]bool{self: true}
		queue := []int{self}
		for len(queue) > 0 {
			pid := queue[0]
			queue = queue[1:]
			for _, c := range children[pid] {
				if !seen[c] {
					seen[c] = true
					victims = append(victims, c)
					queue = append(queue, c)
				}
			}
		}
		for pid, p := range procs {
			if pgrp == self && p.pgrp == pgrp && !seen[pid] {
				victims = append(victims, pid)
			}
		}
		live := 0
		for _, pid := range victims {
			if procs[pid].state != 'Z' {
				live++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if live == 0 {
			return
		}
	}
}

type procInfo struct {
	state      byte
	ppid, pgrp int
}

// readProcs reads the state, parent and process group of every process in /proc.
func readProcs() map[int]procInfo {
	out := map[int]procInfo{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pg, _ := strconv.Atoi(f[2])
		out[pid] = procInfo{state: f[0][0], ppid: ppid, pgrp: pg}
	}
	return out
}
