// Package plugins runs a stage's records in plugin processes: separate executables launched
// and handshaken with hashicorp/go-plugin, one process per worker incarnation, so that a crash,
// a leak or a hang in user code never takes the host down. Config.Factory makes the
// troupe.BackendFactory a stage uses:
//
//	factory, err := plugins.Config{Cmd: []string{"./bin/imgconv-plugin"}, Limits: plugins.Limits{RSS: 512 << 20}}.Factory()
//	stage := troupe.Stage{Name: "convert", Backend: factory, Workers: 4}
//
// Each process speaks the stage protocol (ipc/README.md): a gRPC control service over
// go-plugin, and length-prefixed record frames on a unix socket pair passed as file descriptor
// 3. Plugins are written in Go with package plugins/sdk, in Python with plugins/python (the
// troupe_plugin package), or in any language from the README.
//
// # Processes
//
// A plugin runs in its own process group with a minimal environment (PATH, HOME, TMPDIR, LANG
// and Config.Env), no stdin, and its stderr forwarded line by line to Config.Logger. It cannot
// outlive the host: it gets a parent-death signal when the host's thread that forked it exits
// (the fork is done from a locked OS thread that lives exactly as long as the process), and the
// SDK exits when its connection to the host drops or its parent changes. Every kill goes to the
// process group, so the plugin's own children die with it.
//
// No process a plugin starts outlives it, nor the host, even when it leaves the plugin's process
// group (setsid, a daemon's double fork) or ignores SIGTERM, and even when the host is killed
// with SIGKILL. Where cgroup v2 is available and writable (found from /proc/self/mountinfo and
// /proc/self/cgroup; Linux 5.14 or later for cgroup.kill), each plugin is started straight into
// a cgroup of its own, <the host's cgroup>/troupe-<host pid>-<k>/p<n>, and when its main process
// exits, for whatever reason, the cgroup is killed (cgroup.kill) and removed before the backend
// counts the process as reaped. A guardian process (the host's own binary re-executed; it shows
// as "troupe-guardian"), running while the host has plugin processes, kills the host's troupe
// cgroup when the host dies, however it dies; the host stops and reaps it 2 s after its last
// plugin cgroup is removed (a plugin restarted meanwhile reuses it rather than wait for a new
// one), or at once in WaitClosed, so no troupe process outlives the plugins. Setting
// TROUPE_PLUGIN_CGROUP=off in the host's environment turns cgroups off.
//
// Without cgroups (not mounted, not writable, an older kernel, clone3 refused by a seccomp
// filter, or turned off) the guarantee is weaker. The SDK makes a plugin the subreaper of its
// descendants, so that a daemon stays below it, and kills all of them (and the rest of its
// process group) before it exits, including when the host dies (under a troupe host the SDK
// replaces the parent-death SIGKILL by a signal it handles), and the host kills the plugin's
// whole /proc tree before every SIGKILL it sends. What that cannot cover: descendants of a plugin
// that dies on its own (a crash, an outside SIGKILL, a Go fatal error) and that left its process
// group; descendants of a plugin not built with the SDK that left its group; anything when the
// plugin's runtime cannot run its signal handler after the host died. A plugin running as root
// can leave any cgroup or process tree on purpose; nothing here contains a hostile root process.
//
// When the process dies, breaks the protocol, or crosses a limit, the backend kills the group
// and reports the reason once to troupe.Outcomes.Fail: "killed by SIGSEGV" or "exited with code
// 3" with the last output lines, "rss 612 MiB > limit 512 MiB", "cpu 180% > limit 150% for 3s".
// The runtime then redelivers the worker's records and starts a new process. Every results
// frame is checked against the records sent (ipc/README.md, "What the host verifies"): a
// protocol violation is reported as an troupe.BackendFault, so that no record is charged for it.
//
// A start that fails because the process died, timed out or refused its options is retried by
// the runtime like a crash; one that can never succeed (a missing or non-executable program, a
// sha256 mismatch, a program that is not a troupe plugin of this protocol major) is an
// troupe.PermanentError, and the run fails at once with the reason. Closing the dead
// backend does not hold that up: Close returns at once and the dead process is reaped in the
// background (bounded); WaitClosed waits for that.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"os/exec"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/internal/host"
)

// Config describes a plugin stage's processes. It is the one plugin configuration type: the
// spec's `plugin:` section decodes straight into it, its tags (package internal/schema) name the
// keys, and fields tagged yaml:"-" are set by the program or from other keys of the stage
// (limits, spares, credits). Its fields, documented on the internal host.Options it is defined
// as, are:
//
//   - Cmd: argv; Cmd[0] already resolved to a path by the caller.
//   - SHA256: the optional hex sum of Cmd[0]; a mismatch refuses to start, naming both sums.
//   - Env: added to the minimal environment (PATH, HOME, TMPDIR, LANG if set).
//   - Dir: the working directory; "" = inherit.
//   - Limits: enforced by the watchdog (see Limits).
//   - MaxFrame: max data frame bytes; 0 = 64 MiB.
//   - Credits: records the host asks to have in flight per process; 0 = 8192 (the stage's
//     Credits bound it too).
//   - Logger: plugin output goes here line by line (level info) with attrs stage, worker, pid,
//     stream; the host's own lines about a process carry stage, worker and pid (worker "spare"
//     for a spare not yet taken). nil = discard.
//   - Grace: how long Close waits for a graceful exit before SIGKILL, cut short by Close's
//     context; 0 = 5s.
//   - SampleInterval: the watchdog's sampling period; 0 = 100ms.
//   - Spares: how many warm plugin processes (launched, handshaken and, once the stage's
//     options are known, configured with its data connection open) a Pool keeps for the stage,
//     shared by its workers: a worker start or restart takes one, which takes records at once,
//     and a replacement is launched in the background. 0 = none; a Config with spares must be
//     run through NewPool, whose Close kills them.
//
// The defaults of the zero values are resolved in one place, when a process is launched.
type Config host.Options

// Limits are enforced on every plugin process by sampling it (every 100 ms). The spec's
// `limits:` section of a plugin stage decodes straight into it. RSS is the resident set size in
// bytes (units.Size), 0 = none, and crossing it kills at once; CPU is in percent of one core
// (150 = 1.5 cores), 0 = none, and the process is killed when its average over the last
// CPUWindow (0 = 3s) is over it; Startup bounds launch, handshake and Configure (0 = 10s).
type Limits = host.Limits

// WaitClosed waits until the dead plugin processes whose backends were closed have been reaped
// in the background (each within a few seconds), or ctx ends, and then stops the guardian if no
// plugin is left. Pool.Close calls it; a program using Config.Factory may call it after its
// pipeline's run (actors.Run) returns, before it exits.
func WaitClosed(ctx context.Context) error { return host.WaitClosed(ctx) }

// options is c as the host takes it: the same type, no copy field by field.
func (c Config) options() host.Options { return host.Options(c) }

// Validate checks the configuration without starting anything: a command, a well-formed
// sha256, sane sizes.
func (c Config) Validate() error {
	o := c.options()
	return o.Validate()
}

// Check validates the configuration and checks, without starting anything, that its program
// can be started: Cmd[0] is an executable file (looked up in $PATH when it has no slash) and,
// when SHA256 is set, has that sum. It is the check to run before a pipeline starts, so that a
// missing or wrong binary is reported at once rather than as a failing worker.
func (c Config) Check() error {
	if err := c.Validate(); err != nil {
		return err
	}
	path, err := exec.LookPath(c.Cmd[0])
	if err != nil {
		return fmt.Errorf("plugin: %w", err)
	}
	if c.SHA256 != "" {
		return host.CheckSHA256(path, c.SHA256)
	}
	return nil
}

// Factory validates the configuration and returns a BackendFactory starting one plugin process
// per worker incarnation. The factory blocks until the plugin is ready (handshake and Configure
// done) and fails the start when that exceeds Limits.Startup, when Cmd[0] does not match SHA256
// (checked before every launch), or when the plugin speaks another major protocol version.
//
// A Config with Spares fails here: its spare processes need an owner to close them (NewPool).
func (c Config) Factory() (troupe.BackendFactory, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Spares > 0 {
		return nil, errors.New("plugin: a stage with spares needs a plugins.Pool (NewPool), closed after the run")
	}
	opts := c.options()
	opts.Cmd = append([]string(nil), c.Cmd...)
	return func(ctx context.Context, w troupe.WorkerInfo, out troupe.Outcomes) (troupe.Backend, error) {
		if out == nil {
			return nil, errors.New("plugins: nil Outcomes")
		}
		b, err := host.Start(ctx, opts, host.Worker{Stage: w.Stage, Index: w.Index, Incarnation: w.Incarnation, Options: w.Options}, out)
		if err != nil {
			return nil, fmt.Errorf("stage %s worker %d: %w", w.Stage, w.Index, err)
		}
		return b, nil
	}, nil
}
