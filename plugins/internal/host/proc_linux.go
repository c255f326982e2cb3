package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// proc is one plugin process. It implements go-plugin's runner.Runner, so go-plugin does the
// handshake over its stdout and the stderr forwarding, while proc owns everything about the
// process itself:
//
//   - It is forked from a goroutine locked to its OS thread, which stays alive (blocked in
//     waitid) until the process has exited. PR_SET_PDEATHSIG fires when the *thread* that forked
//     the child exits (golang/go#27505), so forking from an ordinary goroutine would let the Go
//     scheduler retire the thread and SIGKILL a healthy plugin. The thread exits only after the
//     child is dead.
//   - It is the leader of its own process group, and every kill goes to the group, so
//     grandchildren die with it. The group is only signalled while the leader is not yet reaped,
//     so its id cannot have been reused.
//   - Its exit is observed at once with waitid(WNOWAIT), independently of go-plugin (which only
//     reaps after the stdio pipes are drained), and its exit status is kept for the crash reason.
//   - Where cgroup v2 allows it, it is forked straight into a cgroup of its own (see
//     cgroup_linux.go), which is killed as soon as the process exits, whatever the reason: the
//     descendants that left its process group (setsid, a daemon's double fork) die with it. It is
//     reaped (Wait) only once that cgroup is empty and removed.
type proc struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr io.ReadCloser
	child  *os.File // the plugin's end of the data socket, closed here once the child has it

	onStart  func(pid int) // called once the process runs, before Start returns
	startReq chan struct{}
	startErr chan error
	abort    chan struct{} // closed if the process will never be started

	pid       int
	exited    chan struct{} // closed once the process has exited (before it is reaped)
	exitCode  int32         // siginfo si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED
	exitValue int32         // exit status or signal number

	mu     sync.Mutex
	reaped bool
	reapCh chan struct{} // closed once the process is reaped (and its stdio drained)

	handshake lineCapture

	log    *slog.Logger  // set by the backend before Start; nil = discard
	cg     *pluginCgroup // nil when the process runs without a cgroup
	cgDone chan struct{} // closed once the cgroup is killed, empty and removed (or there is none)
}

func newProc(cmd *exec.Cmd, child *os.File) (*proc, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{
		cmd: cmd, stdout: stdout, stderr: stderr, child: child,
		startReq: make(chan struct{}), startErr: make(chan error, 1), abort: make(chan struct{}),
		exited: make(chan struct{}), reapCh: make(chan struct{}), cgDone: make(chan struct{}),
	}
	go p.run()
	return p, nil
}

// run forks the process on a locked thread and keeps that thread until the process exits.
func (p *proc) run() {
	// Never unlocked: when this goroutine returns, its thread is destroyed with it, which is
	// what we want once the child is dead, and never before.
	runtime.LockOSThread()
	select {
	case <-p.startReq:
	case <-p.abort:
		p.closeChild()
		close(p.exited)
		close(p.cgDone)
		close(p.reapCh)
		return
	}
	p.joinCgroup()
	err := p.cmd.Start()
	p.closeChild()
	if err != nil {
		p.startErr <- err
		if p.cg != nil {
			p.cg.started()
			_ = p.cg.remove(cgroupDrain)
		}
		close(p.exited)
		close(p.cgDone)
		close(p.reapCh)
		return
	}
	if p.cg != nil {
		p.cg.started()
	}
	p.mu.Lock()
	p.pid = p.cmd.Process.Pid
	p.mu.Unlock()
	if p.onStart != nil {
		p.onStart(p.pid)
	}
	p.startErr <- nil
	p.exitCode, p.exitValue = waitExit(p.pid)
	// The leader is dead but not reaped: clear out whatever is left of its group, and of its
	// cgroup (what left the group).
	p.killGroup(syscall.SIGKILL)
	if p.cg != nil {
		if err := p.cg.kill(); err != nil {
			p.logger().Error("cannot kill the plugin's cgroup", "pid", p.pid, "error", err)
		}
	}
	close(p.exited)
	if p.cg != nil {
		if err := p.cg.remove(cgroupDrain); err != nil {
			p.logger().Error("plugin descendants remain", "pid", p.pid, "error", err, "pids", p.cg.procs())
		}
	}
	close(p.cgDone)
}

// joinCgroup makes the process start in a cgroup of its own, when the machine allows it.
func (p *proc) joinCgroup() {
	if noCgroups.Load() {
		return
	}
	cg, err := newPluginCgroup()
	if err != nil {
		cgroups.warn.Do(func() {
			p.logger().Warn("plugin processes run without a cgroup: a descendant that leaves its "+
				"plugin's process group may outlive it", "reason", err)
		})
		return
	}
	p.cg = cg
	if p.cmd.SysProcAttr == nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	p.cmd.SysProcAttr.UseCgroupFD = true
	p.cmd.SysProcAttr.CgroupFD = cg.fd
}

func (p *proc) logger() *slog.Logger {
	if p.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.log
}

func (p *proc) closeChild() {
	if p.child != nil {
		p.child.Close()
	}
}

// waitExit blocks until pid has exited, without reaping it, and returns siginfo's si_code and
// si_status.
func waitExit(pid int) (code, status int32) {
	var info [128]byte // siginfo_t
	for {
		err := unix.Waitid(unix.P_PID, pid, (*unix.Siginfo)(unsafe.Pointer(&info[0])), unix.WEXITED|unix.WNOWAIT, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			return -1, 0
		}
	}
	// si_signo, si_errno, si_code, then (after padding to the union's alignment on 64-bit)
	// si_pid, si_uid, si_status.
	code = *(*int32)(unsafe.Pointer(&info[8]))
	off := 12 + 8
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16 + 8
	}
	status = *(*int32)(unsafe.Pointer(&info[off]))
	return code, status
}

// killGroup sends sig to the process group, unless the leader has been reaped already. Without a
// cgroup, a SIGKILL goes first to every descendant of the leader found in /proc (killTree).
func (p *proc) killGroup(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped || p.pid <= 0 {
		return
	}
	if p.cg == nil && sig == syscall.SIGKILL {
		killTree(p.pid, sig)
	}
	_ = syscall.Kill(-p.pid, sig)
}

// siginfo si_code values for SIGCHLD (linux/include/uapi/asm-generic/siginfo.h).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// killedBySIGKILL says whether the process ended by SIGKILL; call it only after exited is
// closed.
func (p *proc) killedBySIGKILL() bool {
	return p.exitCode == cldKilled && syscall.Signal(p.exitValue) == syscall.SIGKILL
}

// exitReason describes how the process ended; call it only after exited is closed.
func (p *proc) exitReason() string {
	switch p.exitCode {
	case cldExited:
		return fmt.Sprintf("exited with code %d", p.exitValue)
	case cldKilled:
		return "killed by " + unix.SignalName(syscall.Signal(p.exitValue))
	case cldDumped:
		return "killed by " + unix.SignalName(syscall.Signal(p.exitValue)) + " (core dumped)"
	}
	return "exited (status unknown)"
}

// runner.Runner.

func (p *proc) Start(ctx context.Context) error {
	select {
	case p.startReq <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-p.startErr
}

func (p *proc) Diagnose(context.Context) string {
	return fmt.Sprintf("%s did not print go-plugin's handshake line on stdout: is it a troupe plugin "+
		"(built with plugins/sdk, or implementing ipc/README.md)?", p.cmd.Path)
}

func (p *proc) Stdout() io.ReadCloser {
	return &lineCaptureReader{ReadCloser: p.stdout, c: &p.handshake}
}

func (p *proc) Stderr() io.ReadCloser { return p.stderr }

func (p *proc) Name() string { return p.cmd.Path }

// Wait reaps the process; go-plugin calls it once the stdio pipes are drained.
func (p *proc) Wait(context.Context) error {
	<-p.exited
	<-p.cgDone // bounded: cgroupDrain
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return nil
	}
	err := p.cmd.Wait()
	p.reaped = true
	close(p.reapCh)
	return err
}

func (p *proc) Kill(context.Context) error {
	p.killGroup(syscall.SIGKILL)
	return nil
}

func (p *proc) ID() string {
	if p.pid <= 0 {
		return ""
	}
	return strconv.Itoa(p.pid)
}

func (p *proc) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (p *proc) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// lineCapture keeps the first line read through it (go-plugin's handshake line), so that a
// version mismatch can be reported with the plugin's own words.
type lineCapture struct {
	mu   sync.Mutex
	line []byte
	done bool
}

func (c *lineCapture) First() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.line)
}

type lineCaptureReader struct {
	io.ReadCloser
	c *lineCapture
}

func (r *lineCaptureReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	r.c.mu.Lock()
	if !r.c.done {
		for _, ch := range b[:n] {
			if ch == '\n' || len(r.c.line) >= 1024 {
				r.c.done = true
				break
			}
			r.c.line = append(r.c.line, ch)
		}
	}
	r.c.mu.Unlock()
	return n, err
}
