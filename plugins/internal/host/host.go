// Package host runs one stage worker's records in a plugin process: it launches the process
// under go-plugin, configures it over the Stage gRPC service, moves records over the data
// socket, checks what the plugin reports against what it was sent (verify.go), watches the
// process (exit, RSS, CPU) and kills it, group and all. Package plugins
// exposes it as an troupe.BackendFactory; this package does not depend on the actors runtime.
package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/units"
	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/plugins/internal/pluginproto"
)

// Defaults for the zero values of Options and Limits, applied by Options.Resolved.
const (
	// DefaultCredits is what the host asks a plugin to grant. It only bounds what the runtime
	// may have in flight (the stage's own credits, in records and bytes, bound it too), so it is
	// generous: a small grant makes the data plane wait for round trips (1024 records of 64 B
	// are ~0.5 ms at the data plane's rate, less than a round trip through two schedulers on a
	// busy machine).
	DefaultCredits        = 8192
	DefaultStartup        = 10 * time.Second
	DefaultGrace          = 5 * time.Second
	DefaultCPUWindow      = 3 * time.Second
	DefaultSampleInterval = 100 * time.Millisecond
	// killWait bounds every wait after a SIGKILL and go-plugin's Client.Kill, which has been seen
	// to hang (terraform#38939).
	killWait = 5 * time.Second
)

// Limits are enforced on every plugin process by sampling it (every SampleInterval). The
// spec's `limits:` section of a plugin stage decodes straight into it (package plugins exposes
// it as plugins.Limits): its tags (package internal/schema) name the keys.
type Limits struct {
	// RSS is the resident set size in bytes; 0 = none. Crossing it kills at once.
	RSS units.Size `yaml:"rss" min:"1" doc:"Resident set size past which a plugin process is killed at once; none when absent."`
	// CPU is in percent of one core (150 = 1.5 cores); 0 = none. The process is killed when its
	// average over the last CPUWindow is over the limit.
	CPU       units.Percent `yaml:"cpu" min:"0" max:"1000000" doc:"CPU share, in percent of one core, past which (averaged over 3s) a plugin process is killed; none when absent."`
	CPUWindow time.Duration `yaml:"-"`                                                                                                                           // 0 = DefaultCPUWindow
	Startup   time.Duration `yaml:"startup" min:"0s" doc:"Deadline for a plugin process to launch, handshake and take its configuration; 10s when absent or 0."` // launch + handshake + Configure; 0 = DefaultStartup
}

// Options describe a plugin stage's processes: the one configuration type, which package
// plugins exposes as plugins.Config and the spec's `plugin:` section decodes straight into. Its
// tags (package internal/schema) name the keys; fields tagged yaml:"-" are set by the program or
// from other keys of the stage (limits, spares, credits). Zero values mean the defaults above,
// resolved in one place, Resolved.
type Options struct {
	// Cmd is argv; Cmd[0] already resolved to a path by the caller.
	Cmd []string `yaml:"cmd" required:"true" nonempty:"true" doc:"The program and its arguments. A relative program path containing a slash is resolved against the spec's directory; one without a slash is looked up in $PATH. An argument that is a relative path containing a slash and naming a file next to the spec (an interpreter's script: [python3, ./stage.py]) is resolved against the spec's directory too."`
	// SHA256 is the optional hex sum of Cmd[0] (either case); a mismatch refuses to start,
	// naming both sums.
	SHA256 string `yaml:"sha256" doc:"The program's expected SHA-256, as 64 hexadecimal digits; a mismatch refuses to start it."`
	// Env is added to the minimal environment (PATH, HOME, TMPDIR, LANG if set).
	Env      map[string]string `yaml:"env" doc:"Environment variables added to the plugin's minimal environment (PATH, HOME, TMPDIR, LANG)."`
	Dir      string            `yaml:"-"` // working directory; "" = inherit
	Limits   Limits            `yaml:"-"`
	MaxFrame int               `yaml:"-"` // max data frame bytes; 0 = ipc.DefaultMaxFrame (64 MiB)
	Credits  int               `yaml:"-"` // records the host asks to have in flight per process; 0 = DefaultCredits (the stage's Credits bound it too)
	Logger   *slog.Logger      `yaml:"-"` // plugin output goes here line by line with attrs stage, worker, pid, stream; nil = discard
	// Grace is how long Close waits for a graceful exit before SIGKILL, cut short by Close's
	// context; 0 = DefaultGrace.
	Grace time.Duration `yaml:"-"`
	// SampleInterval is the watchdog's sampling period; 0 = DefaultSampleInterval.
	SampleInterval time.Duration `yaml:"-"`
	// Spares is how many warm plugin processes (launched, handshaken and preconfigured: see
	// Spare.Preconfigure) a plugins.Pool keeps for the stage, shared by its workers: a worker
	// start or restart takes one, and a replacement is launched in the background. 0 = none; a
	// configuration with spares must be run through plugins.NewPool, whose Close kills them.
	// This package does not use it.
	Spares int `yaml:"-"`
}

// Resolved returns o with every zero value that has a default replaced by it (credits, max
// frame, startup, CPU window, grace, sample interval): the one place the defaults are applied.
func (o Options) Resolved() Options {
	if o.MaxFrame == 0 {
		o.MaxFrame = ipc.DefaultMaxFrame
	}
	if o.Credits == 0 {
		o.Credits = DefaultCredits
	}
	if o.Limits.Startup == 0 {
		o.Limits.Startup = DefaultStartup
	}
	if o.Limits.CPUWindow == 0 {
		o.Limits.CPUWindow = DefaultCPUWindow
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.SampleInterval == 0 {
		o.SampleInterval = DefaultSampleInterval
	}
	return o
}

// Validate checks the options without touching the file system.
func (o *Options) Validate() error {
	if len(o.Cmd) == 0 || o.Cmd[0] == "" {
		return errors.New("plugin: empty command")
	}
	if o.SHA256 != "" {
		b, err := hex.DecodeString(o.SHA256)
		if err != nil || len(b) != sha256.Size {
			return fmt.Errorf("plugin: sha256 %q is not 64 hex digits", o.SHA256)
		}
	}
	if o.MaxFrame < 0 || o.Credits < 0 || o.Limits.CPU < 0 || o.Limits.Startup < 0 {
		return errors.New("plugin: negative max frame, credits, cpu or startup limit")
	}
	if o.Spares < 0 {
		return fmt.Errorf("plugin: negative spares %d", o.Spares)
	}
	if o.MaxFrame > 1<<31-1 {
		return fmt.Errorf("plugin: max frame %d over 2 GiB", o.MaxFrame)
	}
	if o.MaxFrame != 0 && o.MaxFrame < 1024 {
		return fmt.Errorf("plugin: max frame %d under 1 KiB", o.MaxFrame)
	}
	return nil
}

// Worker names the worker incarnation a process serves.
type Worker struct {
	Stage       string
	Index       int
	Incarnation int
	Options     map[string]any
}

// Outcomes receives what the plugin produces: troupe.Outcomes.
type Outcomes = troupe.Outcomes

// Backend is one plugin process serving one worker incarnation.
type Backend struct {
	opts     Options
	worker   Worker
	out      Outcomes
	log      *slog.Logger
	rootLog  *slog.Logger // Options.Logger, or a discarding one
	maxFrame int
	credits  int

	proc   *proc
	client *plugin.Client
	stage  ipc.StageClient
	conn   *net.UnixConn
	stderr *stderrLog
	// socketDir is go-plugin's temporary directory for the plugin's gRPC socket.
	socketDir string
	// pre is set when the process was configured ahead of need (Spare.Preconfigure).
	pre *preconfigured

	wmu     sync.Mutex
	wbuf    []byte // encoded batches waiting for the writer
	wclosed bool
	failErr error // why the backend failed, once it has (what Outcomes.Fail reports)
	batchID uint64
	wake    chan struct{}

	// sent holds the records submitted and not yet reported, oldest first: what the plugin's
	// results are checked against (verify).
	smu     sync.Mutex
	sent    fifo
	nextSeq uint64 // the seq of the last record submitted (guarded by wmu)

	stop      chan struct{} // closed by Close: goroutines return
	closing   atomic.Bool
	failOnce  sync.Once
	failed    chan struct{} // closed once the backend has failed (process killed, Fail reported)
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start launches a plugin process for worker w and configures it. It blocks until the plugin is
// ready to take records, or fails (killing whatever it started) when startup exceeds
// Limits.Startup or ctx ends.
func Start(ctx context.Context, opts Options, w Worker, out Outcomes) (*Backend, error) {
	started := time.Now()
	b, err := launch(ctx, opts, w.Stage, started)
	if err != nil {
		return nil, err
	}
	return b.configure(ctx, w, out, started)
}

// Spare is a plugin process that has been launched and has completed go-plugin's handshake, but
// serves no worker yet: Configure makes it a worker's Backend, which costs one gRPC call instead
// of a fork, an exec and a handshake, or nothing but starting the data loops when Preconfigure
// has made that call already. A spare dies with the host like any plugin process.
type Spare struct {
	b    *Backend
	once sync.Once // Configure or Close, whichever comes first
}

// Launch starts a spare plugin process for stage (used in log records only; "" when the spare
// may serve any stage; Configure tags the records with the worker's stage). It
// blocks until the handshake is done, or fails (killing whatever it started) when that exceeds
// Limits.Startup or ctx ends.
func Launch(ctx context.Context, opts Options, stage string) (*Spare, error) {
	b, err := launch(ctx, opts, stage, time.Now())
	if err != nil {
		return nil, err
	}
	return &Spare{b: b}, nil
}

// Pid is the spare's process id.
func (s *Spare) Pid() int { return s.b.proc.pid }

// Alive reports whether the spare's process is still running.
func (s *Spare) Alive() bool {
	select {
	case <-s.b.proc.exited:
		return false
	default:
		return true
	}
}

// Configure hands the spare to worker w: it calls Configure (bounded by Limits.Startup and ctx)
// and starts moving records. It may be called once, and not after Close; on failure the
// process is killed.
func (s *Spare) Configure(ctx context.Context, w Worker, out Outcomes) (*Backend, error) {
	ok := false
	s.once.Do(func() { ok = true })
	if !ok {
		return nil, errors.New("plugin: spare already configured or closed")
	}
	return s.b.configure(ctx, w, out, time.Now())
}

// ErrSpareMismatch is returned by Spare.Configure for a spare preconfigured for another stage,
// or with other options, than the worker's; the spare is killed.
var ErrSpareMismatch = errors.New("plugin: spare preconfigured for another stage or other options")

// Preconfigure calls Configure now, for a worker of stage w.Stage with options w.Options
// (w.Index and w.Incarnation are what the plugin is told: a guess, for its logs), so that the
// spare is ready for records before a worker needs it: Configure for a worker of the same
// stage with the same options then only starts moving records, without a call to the plugin.
// It is bounded by Limits.Startup and ctx; on failure the spare is killed and must not be used.
// It may be called once, before Configure and not concurrently with it or Close.
func (s *Spare) Preconfigure(ctx context.Context, w Worker) error {
	b := s.b
	optsJSON, err := optionsJSON(w.Options)
	if err != nil {
		s.Close()
		return err
	}
	started := time.Now()
	var resp *ipc.ConfigureResponse
	err = b.bounded(ctx, started, func(ctx context.Context) error {
		var err error
		resp, err = b.configureRPC(ctx, w, optsJSON)
		return err
	})
	if err != nil {
		err = b.startError(err, time.Since(started))
		s.Close()
		return err
	}
	b.pre = &preconfigured{stage: w.Stage, opts: optsJSON, resp: resp}
	return nil
}

// preconfigured is what Preconfigure told the plugin and what it answered.
type preconfigured struct {
	stage string
	opts  []byte
	resp  *ipc.ConfigureResponse
}

func optionsJSON(opts map[string]any) ([]byte, error) {
	if opts == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return nil, permanent(fmt.Errorf("plugin: stage options do not encode as JSON: %w", err))
	}
	return b, nil
}

// Close kills a spare that was not configured, and waits (bounded) until it is reaped. It is a
// no-op after Configure: the Backend owns the process then.
func (s *Spare) Close() {
	s.once.Do(func() {
		close(s.b.stop)
		s.b.teardown()
	})
}

// launch starts the process through go-plugin, up to the end of the handshake.
func launch(ctx context.Context, opts Options, stage string, started time.Time) (*Backend, error) {
	if err := opts.Validate(); err != nil {
		return nil, permanent(err)
	}
	if opts.SHA256 != "" {
		if err := CheckSHA256(opts.Cmd[0], opts.SHA256); err != nil {
			return nil, permanent(err)
		}
	}
	opts = opts.Resolved()
	b := &Backend{
		opts: opts, maxFrame: opts.MaxFrame, credits: opts.Credits,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), failed: make(chan struct{}),
	}
	b.rootLog = opts.Logger
	if b.rootLog == nil {
		b.rootLog = slog.New(slog.DiscardHandler)
	}
	if stage == "" {
		b.log = b.rootLog.With("worker", "spare")
	} else {
		b.log = b.rootLog.With("stage", stage, "worker", "spare")
	}

	conn, child, err := ipc.SocketPair()
	if err != nil {
		return nil, fmt.Errorf("plugin: data socket: %w", err)
	}
	b.conn = conn

	cmd := exec.Command(opts.Cmd[0], opts.Cmd[1:]...)
	cmd.Dir = opts.Dir
	cmd.ExtraFiles = []*os.File{child} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p, err := newProc(cmd, child)
	if err != nil {
		child.Close()
		b.conn.Close()
		return nil, fmt.Errorf("plugin: %w", err)
	}
	b.proc = p
	p.log = b.log
	b.stderr = newStderrLog(b.log, "stderr")
	p.onStart = b.stderr.setPid
	env := minimalEnv(opts.Env)
	b.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginproto.Handshake(ipc.ProtocolMajor),
		Plugins:          pluginproto.Set(&pluginproto.Plugin{}),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, socketDir string) (runner.Runner, error) {
			b.socketDir = socketDir
			// spec carries go-plugin's variables (magic cookie, versions, socket dir).
			cmd.Env = append(env, spec.Env...)
			return p, nil
		},
		SkipHostEnv:  true,
		StartTimeout: b.opts.Limits.Startup + time.Second, // our own deadline fires first
		Stderr:       b.stderr,
		SyncStderr:   b.stderr.stream("stderr"),
		SyncStdout:   b.stderr.stream("stdout"),
		Logger:       hclog.NewNullLogger(),
	})
	if err := b.bounded(ctx, started, b.handshake); err != nil {
		close(p.abort)
		b.teardown()
		return nil, b.startError(err, time.Since(started))
	}
	b.log = b.log.With("pid", p.pid)
	return b, nil
}

// bounded runs step within what is left of the startup deadline counted from started, and
// kills the process group if the deadline passes or ctx ends first.
func (b *Backend) bounded(ctx context.Context, started time.Time, step func(context.Context) error) error {
	startCtx, cancel := context.WithDeadline(ctx, started.Add(b.opts.Limits.Startup))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- step(startCtx) }()
	var err error
	select {
	case err = <-done:
	case <-startCtx.Done():
		b.proc.killGroup(syscall.SIGKILL)
		err = <-done // returns promptly: the process is dead and startCtx is over
	}
	if err == nil && startCtx.Err() != nil {
		err = startCtx.Err()
	}
	if err != nil && startCtx.Err() != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("plugin %s: start cancelled: %w", b.opts.Cmd[0], ctx.Err())
		}
		return fmt.Errorf("plugin %s: startup exceeded %v", b.opts.Cmd[0], b.opts.Limits.Startup)
	}
	return err
}

// configure makes a launched process worker w's backend: Configure, then the data loops.
func (b *Backend) configure(ctx context.Context, w Worker, out Outcomes, started time.Time) (*Backend, error) {
	b.worker, b.out = w, out
	base := b.rootLog.With("stage", w.Stage, "worker", w.Index)
	b.stderr.setLogger(base) // which adds each line's pid itself
	b.log = base.With("pid", b.proc.pid)
	optsJSON, err := optionsJSON(w.Options)
	if err != nil {
		close(b.stop)
		b.teardown()
		return nil, err
	}
	var resp *ipc.ConfigureResponse
	if pre := b.pre; pre != nil {
		// Configured ahead of need: records may flow at once.
		if pre.stage != w.Stage || !bytes.Equal(pre.opts, optsJSON) {
			close(b.stop)
			b.teardown()
			return nil, ErrSpareMismatch
		}
		resp = pre.resp
	} else {
		err = b.bounded(ctx, started, func(ctx context.Context) error {
			var err error
			resp, err = b.configureRPC(ctx, w, optsJSON)
			return err
		})
		if err != nil {
			close(b.stop)
			b.teardown()
			return nil, b.startError(err, time.Since(started))
		}
	}
	if v := resp.GetProtocol(); v.GetMinor() != ipc.ProtocolMinor {
		b.log.Debug("plugin protocol minor version differs", "plugin", fmt.Sprintf("%d.%d", v.GetMajor(), v.GetMinor()), "host", ipc.ProtocolVersion)
	}
	b.wg.Add(3)
	go b.readLoop()
	go b.writeLoop()
	go b.monitor()
	b.out.Grant(int(resp.GetCredits()))
	return b, nil
}

// handshake starts the process through go-plugin and dispenses the Stage client.
func (b *Backend) handshake(context.Context) error {
	rpc, err := b.client.Client()
	if err != nil {
		return err
	}
	raw, err := rpc.Dispense(ipc.PluginName)
	if err != nil {
		return err
	}
	b.stage = raw.(ipc.StageClient)
	return nil
}

// configureRPC calls Configure for worker w.
func (b *Backend) configureRPC(ctx context.Context, w Worker, optsJSON []byte) (*ipc.ConfigureResponse, error) {
	resp, err := b.stage.Configure(ctx, &ipc.ConfigureRequest{
		Protocol:    &ipc.Version{Major: ipc.ProtocolMajor, Minor: ipc.ProtocolMinor},
		Stage:       w.Stage,
		Worker:      uint32(w.Index),
		Incarnation: uint32(w.Incarnation),
		OptionsJson: optsJSON,
		Limits:      &ipc.Limits{RssBytes: uint64(b.opts.Limits.RSS), CpuPercent: float64(b.opts.Limits.CPU)},
		Data:        &ipc.DataChannel{Fd: 3},
		MaxFrame:    uint32(b.maxFrame),
		Credits:     uint32(b.credits),
	})
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	if v := resp.GetProtocol(); v.GetMajor() != ipc.ProtocolMajor {
		return nil, permanentf("plugin speaks troupe stage protocol %d.%d, host speaks %s",
			v.GetMajor(), v.GetMinor(), ipc.ProtocolVersion)
	}
	if resp.GetCredits() == 0 {
		return nil, errors.New("plugin granted no credits")
	}
	return resp, nil
}

// teardown kills the process group, closes everything and waits (bounded) for go-plugin to let
// go of the process.
func (b *Backend) teardown() {
	b.wmu.Lock()
	b.wclosed = true
	b.wmu.Unlock()
	b.proc.killGroup(syscall.SIGKILL)
	b.conn.Close()
	killed := make(chan struct{})
	go func() {
		b.client.Kill()
		close(killed)
	}()
	until := time.Now().Add(killWait)
	if !waitUntil(killed, until) {
		b.log.Error("go-plugin's Client.Kill did not return; abandoning it", "after", killWait)
	}
	if !waitUntil(b.proc.reapCh, until) {
		b.log.Error("plugin process not reaped", "after", killWait)
	}
	if b.socketDir != "" {
		_ = os.RemoveAll(b.socketDir)
	}
}

// waitUntil waits for ch to be closed until the deadline and says whether it was.
func waitUntil(ch <-chan struct{}, until time.Time) bool {
	t := time.NewTimer(max(time.Until(until), 0))
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// Pid is the plugin process's id.
func (b *Backend) Pid() int { return b.proc.pid }

// fail kills the process group and reports why, once. If preferExit is set and the process
// exits on its own within a moment, its exit status is the reason (a closed connection is
// usually the symptom of a crash, not its cause).
func (b *Backend) fail(cause error, preferExit bool) {
	b.failOnce.Do(func() {
		if preferExit {
			t := time.NewTimer(500 * time.Millisecond)
			select {
			case <-b.proc.exited:
				cause = nil
			case <-t.C:
			}
			t.Stop()
		}
		b.proc.killGroup(syscall.SIGKILL)
		var err error
		if !b.closing.Load() {
			if cause == nil && !b.proc.killedBySIGKILL() {
				// A crash the plugin reports itself (a panic, a signal, an exit code): its last
				// words are in the stderr pipe, and reaping implies go-plugin drained it, so the
				// tail below is complete. A SIGKILL comes from outside (the OOM killer, an
				// operator, a failover test): the plugin wrote nothing about it, so the report
				// does not wait for the drain and the reap, which Close finishes in the
				// background; the tail shows what had been read by then.
				waitUntil(b.proc.reapCh, time.Now().Add(killWait))
			}
			var msg string
			if cause == nil {
				msg = fmt.Sprintf("plugin %s (pid %d) %s%s", b.opts.Cmd[0], b.proc.pid, b.proc.exitReason(), b.stderr.tailSuffix())
			} else {
				msg = fmt.Sprintf("plugin %s (pid %d): %v", b.opts.Cmd[0], b.proc.pid, cause)
			}
			err = errors.New(msg)
			if pe := (*protocolError)(nil); errors.As(cause, &pe) {
				// The process is at fault, not a record it held (troupe.BackendFault).
				err = &protocolError{msg: msg}
			}
		}
		b.wmu.Lock()
		b.wclosed = true
		b.failErr = err
		b.wmu.Unlock()
		close(b.failed)
		if err == nil || b.closing.Load() {
			return
		}
		b.log.Warn("plugin failed", "reason", err.Error())
		b.out.Fail(err)
	})
}

// Close stops the plugin: a graceful Shutdown call, then SIGTERM to the process group, and
// SIGKILL once the grace period (Options.Grace, cut short by ctx) has passed; then it reaps the
// process and releases go-plugin's client, each wait bounded. It is idempotent and safe to call
// concurrently with everything else; it reports nothing to Outcomes.
//
// A backend whose process is already dead (it failed, or exited) has nothing left to stop
// gracefully: Close then returns nil at once and finishes in the background, so that a
// failover does not wait for the dead process's reap, go-plugin's Client.Kill and the stdio
// drain. That background teardown still reaps the process, each wait bounded (killWait), and
// logs what it could not finish; WaitClosed waits for it.
func (b *Backend) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		if b.dead() {
			b.closing.Store(true)
			close(b.stop)
			closing.Add(1)
			go func() {
				defer closing.Done()
				b.teardown()
				b.wg.Wait()
				if !b.reaped() {
					b.log.Error("plugin process could not be reaped")
				}
			}()
			return
		}
		b.closeErr = b.close(ctx)
	})
	return b.closeErr
}

// closing counts the background teardowns of dead backends (Close).
var closing sync.WaitGroup

// WaitClosed waits until the background teardowns of dead backends started by Close have
// finished (each is bounded by a few seconds), or ctx ends, and then retires the plugin guardian
// if no plugin is left (rather than let it linger for a restart; see cgroup_linux.go). A program
// that must not exit with a plugin process unreaped, or a test checking for leaks, calls it
// after closing its backends.
func WaitClosed(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		closing.Wait()
		retireIdleGuardian()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("plugin: waiting for dead plugin processes to be reaped: %w", ctx.Err())
	}
}

// dead says whether the process has exited or the backend has failed (which kills it).
func (b *Backend) dead() bool {
	select {
	case <-b.proc.exited:
		return true
	case <-b.failed:
		return true
	default:
		return false
	}
}

func (b *Backend) reaped() bool {
	select {
	case <-b.proc.reapCh:
		return true
	default:
		return false
	}
}

func (b *Backend) close(ctx context.Context) error {
	b.closing.Store(true)
	grace := b.opts.Grace
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(dl))
	}
	deadline := time.Now().Add(grace)
	exited := func(until time.Time) bool {
		t := time.NewTimer(max(time.Until(until), 0))
		defer t.Stop()
		select {
		case <-b.proc.exited:
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
			return false
		}
	}
	select {
	case <-b.proc.exited:
	case <-b.failed:
	default:
		// Graceful: the plugin stops taking records, runs its teardown and exits when we close
		// the data connection.
		sctx, cancel := context.WithDeadline(ctx, time.Now().Add(grace/2))
		_, err := b.stage.Shutdown(sctx, &ipc.ShutdownRequest{})
		cancel()
		b.conn.Close()
		if err != nil || !exited(time.Now().Add(min(grace/4, time.Until(deadline)))) {
			b.proc.killGroup(syscall.SIGTERM)
			if !exited(deadline) {
				b.log.Warn("plugin did not exit within its grace period; killing it", "grace", grace)
			}
		}
	}
	close(b.stop)
	b.teardown()
	b.wg.Wait()
	if !b.reaped() {
		return fmt.Errorf("plugin %s (pid %d) could not be reaped", b.opts.Cmd[0], b.proc.pid)
	}
	return nil
}
