// Package proctree reads the process tree from /proc, for the plugin host and the plugin SDK
// to find a plugin's descendants when no cgroup holds them. Linux only.
package proctree

import (
	"os"
	"strconv"
	"strings"
)

// Proc is one process as /proc/PID/stat shows it.
type Proc struct {
	State      byte // R, S, D, Z, X, …
	PPID, PGRP int
}

// Live says whether the process runs: a zombie (or a dead one) does not.
func (p Proc) Live() bool { return p.State != 'Z' && p.State != 'X' }

// Tree is a snapshot of every process, by pid.
type Tree map[int]Proc

// Read takes a snapshot of /proc; processes that vanish while it reads are left out.
func Read() Tree {
	t := Tree{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return t
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := stat(pid); ok {
			t[pid] = p
		}
	}
	return t
}

// Descendants returns every descendant of pid in the snapshot (not pid itself), parents
// before their children.
func (t Tree) Descendants(pid int) []int {
	children := map[int][]int{}
	for p, info := range t {
		children[info.PPID] = append(children[info.PPID], p)
	}
	var out []int
	seen := map[int]bool{pid: true}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// stat reads one process's state, parent and process group.
func stat(pid int) (Proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Proc{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return Proc{}, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 3 {
		return Proc{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return Proc{}, false
	}
	return Proc{State: f[0][0], PPID: ppid, PGRP: pgrp}, true
}
