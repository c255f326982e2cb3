package host

import (
	"os"
	"strconv"
	"strings"
	"syscall"
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
		children := map[int][]int{}
		live := map[int]bool{}
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		for _, e := range ents {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			state, ppid, ok := statPPID(p)
			if !ok {
				continue
			}
			children[ppid] = append(children[ppid], p)
			live[p] = state != 'Z' && state != 'X'
		}
		found := 0
		queue := []int{pid}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, c := range children[p] {
				queue = append(queue, c)
				if live[c] {
					found++
					_ = syscall.Kill(c, sig)
				}
			}
		}
		if found == 0 || sig != syscall.SIGKILL {
			return
		}
	}
}

// statPPID reads a process's state and parent from /proc/PID/stat.
func statPPID(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0][0], ppid, err == nil
}
