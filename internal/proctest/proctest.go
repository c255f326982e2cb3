// Package proctest helps tests check what processes are left: which are alive (a zombie is
// not), which run a given program, and waiting, with generous deadlines, for pids a test
// process wrote to a file or for processes to be gone. Linux only (it reads /proc).
package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Deadline bounds every wait of this package: an upper bound for a loaded machine, never a
// measure.
const Deadline = time.Minute

// State returns the state letter of pid from /proc/PID/stat (R, S, D, Z, …), or "" when there
// is no such process.
func State(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// Alive says whether pid is a running process: a zombie (or a dead one) is not.
func Alive(pid int) bool {
	st := State(pid)
	return st != "" && st != "Z" && st != "X"
}

// Running lists the live processes whose program is path.
func Running(path string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path && Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ReadPIDs returns the pids written to the file at path, separated by white space; a missing
// file holds none.
func ReadPIDs(path string) []int {
	data, _ := os.ReadFile(path)
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// WaitPIDs waits until the file at path holds at least n pids and returns them; onFail, if
// set, runs before the test fails.
func WaitPIDs(t testing.TB, path string, n int, onFail func()) []int {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for {
		pids := ReadPIDs(path)
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			if onFail != nil {
				onFail()
			}
			t.Fatalf("%s holds pids %v after %s, want %d", path, pids, Deadline, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitGone waits until none of pids is alive; a survivor is killed and the test fails.
func WaitGone(t testing.TB, pids []int, what string) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for _, pid := range pids {
		for Alive(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("%s (pid %d) still running after %s", what, pid, Deadline)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// WaitNoneRunning waits until no live process runs the program at path; survivors are killed
// and the test fails.
func WaitNoneRunning(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for {
		pids := Running(path)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("processes of %s still running after %s: %v", path, Deadline, pids)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Build builds the Go package pkg (an import path) into dir/name and returns the program's
// path; a test that needs it skips under -short.
func Build(t testing.TB, dir, name, pkg string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds " + pkg)
	}
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return bin
}
