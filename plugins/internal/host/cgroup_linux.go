package host

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Plugin processes and everything they start are confined in cgroups (v2), so that no process
// started by a plugin outlives it, whatever it does (a grandchild that ignores SIGTERM, one
// that calls setsid and daemonizes), and none outlives the host, even when the host is killed
// with SIGKILL:
//
//	<the host's own v2 cgroup>/troupe-<host pid>-<k>/     one per host process
//	                            p<n>/                     one per plugin process
//
// Each plugin is forked straight into its own cgroup (clone3 with CLONE_INTO_CGROUP, so there is
// no window in which an early fork of the plugin escapes). When the plugin's main process exits,
// for whatever reason, its cgroup is killed (cgroup.kill: every process in it gets SIGKILL, and
// processes forking meanwhile cannot escape), emptied and removed.
//
// When the host dies without running any code (SIGKILL), a guardian does it: a small process the
// host starts, re-executing its own binary (/proc/self/exe) with guardianEnv set, which init
// below catches before main runs. The guardian sits outside the plugins' cgroups and in its own
// session (so that signals to the host's process group or terminal do not reach it), reads a
// pipe whose write end only the host holds, and when that pipe reaches end of file (the host has
// exited, however it died, or closed it) kills troupe-<host pid>-<k>, waits for it to empty,
// removes it and exits.
//
// A guardian exists while plugin cgroups do: the host counts its live plugin cgroups, starts a
// guardian with the first and retires it guardianLinger after the last one is removed, unless a
// plugin starts meanwhile (it closes the pipe, and waits, bounded, for the guardian to exit and
// reaps it). The linger is for the plugin restarted after a crash: without it, the dead
// plugin's cgroup was the last, and its replacement waited for the guardian to retire and for a
// new one to start (a fork and exec of the host's binary), which was a third of a cold restart.
// WaitClosed retires an idle guardian at once, so a program that embeds troupe (a server, a
// test binary) and calls it has no troupe process left once its plugins are closed; one that
// exits has none either (its guardian sees the pipe's end). The next plugin start makes
// troupe-<host pid>-<k> again and starts a new guardian; a start that comes while a guardian
// retires waits for it to be gone.
//
// Where cgroup v2 cannot be used (not mounted, not writable, a kernel before 5.14 without
// cgroup.kill, clone3 refused by a seccomp filter), plugins run without it, as before: in their
// own process group, killed with it, and the plugin SDK kills its descendants when it exits (see
// plugins/sdk). What that cannot guarantee is written in the plugins package documentation.

// CgroupEnv=off in the host's environment makes plugins run without cgroups, with the
// fallback's weaker guarantees.
const CgroupEnv = "TROUPE_PLUGIN_CGROUP"

// guardianEnv carries the guardian's cgroup directory.
const (
	guardianEnv = "TROUPE_PLUGIN_GUARDIAN"
	// cgroupDrain bounds the wait for a killed cgroup to empty.
	cgroupDrain = 4 * time.Second
)

// guardianName is the guardian's process name (NUL-terminated for PR_SET_NAME).
var guardianName = []byte("troupe-guardian\x00")

func init() {
	dir, ok := os.LookupEnv(guardianEnv)
	if !ok {
		return
	}
	// We are a guardian, not the program: never return to its main.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGTERM, syscall.SIGQUIT)
	// init runs on the main thread, whose name is the process's (ps, /proc/PID/comm).
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&guardianName[0])), 0, 0, 0)
	guard(os.Stdin, dir)
	// Straight out, without os.Exit's hooks: nothing to flush, and a race-enabled binary's
	// exit-time report would make the host's wait for a retiring guardian (in the last
	// plugin's Close) take hundreds of milliseconds.
	syscall.Exit(0)
}

// guard waits until the host is gone (end of file on r, whose write end only the host holds),
// then kills every plugin cgroup under dir and removes them.
func guard(r *os.File, dir string) {
	buf := make([]byte, 512)
	for {
		if _, err := r.Read(buf); err != nil {
			break
		}
	}
	_ = killCgroupTree(dir, 10*time.Second)
}

// noCgroups makes plugins start without a cgroup, as where the machine has none (tests of the
// fallback).
var noCgroups atomic.Bool

// cgroups is the host process's cgroup state, set up on the first plugin start.
var cgroups struct {
	once sync.Once
	base string // <v2 mount><own cgroup>/troupe-<pid>-<k>; "" when cgroups are not used
	own  string // <v2 mount><own cgroup>, where the guardian runs
	err  error  // why they are not used
	seq  atomic.Uint64
	warn sync.Once // the fallback is logged once per process

	mu       sync.Mutex  // serializes guardian starts and retirements, and guards what follows
	live     int         // plugin cgroups made and not yet removed
	linger   *time.Timer // retires an idle guardian (see guardianLinger); nil before the first
	guard    *os.File    // the write end of the guardian's pipe, never written; nil: no guardian
	guardPid int
}

// cgroupBase sets up the host's cgroup and its first guardian once, and returns the directory
// under which plugin cgroups are made, or why there is none.
func cgroupBase() (string, error) {
	cgroups.once.Do(func() {
		cgroups.base, cgroups.err = setupCgroups()
	})
	return cgroups.base, cgroups.err
}

// acquireCgroups counts one more plugin cgroup, starting a guardian (and making the base cgroup
// again) when there is none, and returns the base cgroup. Each successful call is matched by one
// releaseCgroups.
func acquireCgroups() (string, error) {
	base, err := cgroupBase()
	if err != nil {
		return "", err
	}
	cgroups.mu.Lock()
	defer cgroups.mu.Unlock()
	if cgroups.guard == nil {
		// The last guardian retired and removed base (or it was never started).
		if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("making cgroup %s: %w", base, err)
		}
		if err := startGuardian(base, cgroups.own); err != nil {
			_ = killCgroupTree(base, cgroupDrain)
			return "", err
		}
	}
	cgroups.live++
	return base, nil
}

// releaseCgroups counts one plugin cgroup less (it has been removed, or was never made); with the
// last one, the guardian is retired.
func releaseCgroups() {
	cgroups.mu.Lock()
	defer cgroups.mu.Unlock()
	cgroups.live--
	if cgroups.live == 0 && cgroups.guard != nil {
		if cgroups.linger == nil {
			cgroups.linger = time.AfterFunc(guardianLinger, retireIdleGuardian)
		} else {
			cgroups.linger.Reset(guardianLinger)
		}
	}
}

// guardianLinger is how long an idle guardian (no plugin cgroup left) waits for a plugin to
// start before it retires: longer than a restarted worker's backoff (troupe.Restart's Max is
// a second by default), short enough that a program that closed its plugins and does not call
// WaitClosed keeps no troupe process for long.
const guardianLinger = 2 * time.Second

// retireIdleGuardian retires the guardian if no plugin cgroup is left; a plugin that started
// since it became idle keeps it.
func retireIdleGuardian() {
	cgroups.mu.Lock()
	defer cgroups.mu.Unlock()
	if cgroups.linger != nil {
		cgroups.linger.Stop()
	}
	if cgroups.live == 0 && cgroups.guard != nil {
		retireGuardian()
	}
}

// guardianRetire bounds the wait for a retiring guardian (which kills what is left under base
// within 10 s) before it is killed.
const guardianRetire = 15 * time.Second

// retireGuardian closes the guardian's pipe, waits (bounded) until it has cleaned up and exited,
// and reaps it. Called with cgroups.mu held, so no plugin starts meanwhile.
func retireGuardian() {
	pid, base := cgroups.guardPid, cgroups.base
	cgroups.guard.Close()
	cgroups.guard, cgroups.guardPid = nil, 0
	if !waitChildExit(pid, guardianRetire) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitChildExit(pid, killWait)
	}
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err != syscall.EINTR {
			break
		}
	}
	// The guardian removed base; if it could not (killed), do it here.
	_ = killCgroupTree(base, cgroupDrain)
}

// waitChildExit waits up to within for the child pid to exit, without reaping it.
func waitChildExit(pid int, within time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		// No pidfd (Linux before 5.3, not reached: cgroup.kill needs 5.14): poll.
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
			if err != nil || info.Signo != 0 {
				return true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return false
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(within)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return false
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if err == nil && n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return false
		}
	}
}

// guardianPid is the pid of the host's guardian, 0 when there is none.
func guardianPid() int {
	cgroups.mu.Lock()
	defer cgroups.mu.Unlock()
	return cgroups.guardPid
}

func setupCgroups() (string, error) {
	if v := os.Getenv(CgroupEnv); v == "off" {
		return "", fmt.Errorf("disabled by %s=%s", CgroupEnv, v)
	}
	mount, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	removeStaleCgroups(filepath.Join(mount, own))
	// troupe-<pid>-<k>, k the first free: one with our pid may be left by a process killed with
	// its guardian, or belong to a live host in another pid namespace.
	var base string
	for k := 0; ; k++ {
		base = filepath.Join(mount, own, fmt.Sprintf("troupe-%d-%d", os.Getpid(), k))
		err := os.Mkdir(base, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || k == 100 {
			return "", fmt.Errorf("cgroup v2 at %s is not writable: %w", filepath.Join(mount, own), err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "cgroup.kill")); err != nil {
		_ = os.Remove(base)
		return "", errors.New("cgroup v2 has no cgroup.kill (Linux before 5.14)")
	}
	// The first guardian is started here, so that a system refusing clone3 into a cgroup is
	// found now (and plugins fall back) rather than by a plugin start.
	cgroups.own = filepath.Join(mount, own)
	cgroups.mu.Lock()
	defer cgroups.mu.Unlock()
	if err := startGuardian(base, cgroups.own); err != nil {
		_ = killCgroupTree(base, cgroupDrain)
		return "", err
	}
	return base, nil
}

// removeStaleCgroups removes the empty troupe-<pid>-<k> cgroups under parent whose host process is
// gone and whose guardian could not remove them (killed with it). One with processes is left
// alone: its pid may be a live host's in another pid namespace.
func removeStaleCgroups(parent string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "troupe-")
		s, _, _ = strings.Cut(s, "-")
		pid, err := strconv.Atoi(s)
		if !ok || err != nil || !e.IsDir() || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		if _, err := os.Stat("/proc/" + s); errors.Is(err, fs.ErrNotExist) && !populated(dir) {
			_ = removeCgroupDirs(dir)
		}
	}
}

// cgroup2Mount finds where the cgroup2 file system is mounted.
func cgroup2Mount() (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) >= 5 && len(g) >= 1 && g[0] == "cgroup2" && f[3] == "/" {
			return unescapeMountinfo(f[4]), nil
		}
	}
	return "", errors.New("no cgroup2 file system mounted")
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup is the process's cgroup v2 path ("0::/path" in /proc/self/cgroup).
func ownCgroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok && strings.HasPrefix(p, "/") {
			return p, nil
		}
	}
	return "", errors.New("the process has no cgroup v2 (no 0:: line in /proc/self/cgroup)")
}

// startGuardian starts the process that kills base when the host is gone (or retires it). Called
// with cgroups.mu held. It is started into the
// host's own cgroup, own, where it would be anyway, explicitly: with clone3 and
// CLONE_INTO_CGROUP, as plugins will be, so that a system refusing that (clone3 blocked by a
// seccomp filter) is found here rather than by a plugin start.
func startGuardian(base, own string) error {
	fd, err := unix.Open(own, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	r, w, err := os.Pipe() // close-on-exec: no plugin inherits the write end
	if err != nil {
		return err
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return err
	}
	defer null.Close()
	p, err := os.StartProcess("/proc/self/exe", []string{os.Args[0], "(troupe plugin guardian)"}, &os.ProcAttr{
		Dir: "/", Env: []string{guardianEnv + "=" + base}, Files: []*os.File{r, null, null},
		Sys: &syscall.SysProcAttr{Setsid: true, UseCgroupFD: true, CgroupFD: fd},
	})
	if err != nil {
		w.Close()
		return fmt.Errorf("starting the plugin guardian into cgroup %s: %w", own, err)
	}
	cgroups.guardPid = p.Pid
	_ = p.Release() // reaped by retireGuardian, with wait4 on the pid
	cgroups.guard = w
	return nil
}

// pluginCgroup is one plugin process's cgroup.
type pluginCgroup struct {
	dir      string
	fd       int  // open on dir until the process is started into it
	released bool // counted out of cgroups.live
}

// newPluginCgroup makes a cgroup for a plugin process, or returns nil and why there is none.
func newPluginCgroup() (*pluginCgroup, error) {
	base, err := acquireCgroups()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, "p"+strconv.FormatUint(cgroups.seq.Add(1), 10))
	if err := os.Mkdir(dir, 0o755); err != nil {
		releaseCgroups()
		return nil, fmt.Errorf("making cgroup %s: %w", dir, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		releaseCgroups()
		return nil, fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	return &pluginCgroup{dir: dir, fd: fd}, nil
}

// started closes the directory descriptor once the process is in the cgroup (or failed to start).
func (c *pluginCgroup) started() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// kill sends SIGKILL to every process in the cgroup; processes forking meanwhile cannot escape.
func (c *pluginCgroup) kill() error {
	err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// remove waits (bounded) until the cgroup is empty and removes it. The first call counts the
// cgroup out, which retires the guardian with the last one (whatever is left in the cgroup
// after within, the guardian kills on its way out).
func (c *pluginCgroup) remove(within time.Duration) error {
	c.started()
	err := killCgroupTree(c.dir, within)
	if !c.released {
		c.released = true
		releaseCgroups()
	}
	return err
}

// procs lists the processes in the cgroup (not its descendants).
func (c *pluginCgroup) procs() []int {
	data, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for f := range strings.FieldsSeq(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killCgroupTree kills every process in the cgroup dir and its descendants, waits up to within
// for them to be gone (populated 0: zombies do not count), and removes the directories. A
// directory that no longer exists is not an error.
func killCgroupTree(dir string, within time.Duration) error {
	err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("killing cgroup %s: %w", dir, err)
	}
	deadline := time.Now().Add(within)
	for populated(dir) {
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still has processes %v after SIGKILL", dir, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return removeCgroupDirs(dir)
}

// populated reads the cgroup's populated flag (its processes and its descendants').
func populated(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false
	}
	return bytes.Contains(data, []byte("populated 1"))
}

// removeCgroupDirs removes an empty cgroup and its child cgroups, deepest first.
func removeCgroupDirs(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeCgroupDirs(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing cgroup %s: %w", dir, err)
	}
	return nil
}
