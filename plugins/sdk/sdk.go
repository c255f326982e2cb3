// Package sdk turns a Go function into a troupe stage plugin: a separate executable that a
// troupe host launches, one process per stage worker, and feeds records over the stage protocol
// (see ipc/README.md). A plugin's main calls Serve and nothing else:
//
//	func main() {
//		sdk.Serve(sdk.Stage{Process: func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
//			rec.Payload = bytes.ToUpper(rec.Payload)
//			return []troupe.Record{rec}, nil
//		}})
//	}
//
// Serve hides the go-plugin handshake, the control service, the data connection, batching and
// credits, and the watch on the host: the plugin exits when its data connection to the host
// drops, its parent process changes or its host dies, so a plugin never outlives its host.
//
// Nor does anything the plugin starts outlive the plugin. Under a troupe host the plugin is the
// subreaper of its descendants (a process whose parent exits is reparented to the plugin, not to
// init), and before the plugin exits, on any path Serve controls (shutdown, the host gone, a
// broken connection), it sends SIGKILL to all its descendants and to the rest of its process
// group. A plugin that needs a helper process to survive it cannot have one. (Where cgroup v2 is
// available, the host also confines each plugin in a cgroup it kills when the plugin exits; see
// package plugins.)
//
// # Failure model
//
// Process runs one record at a time, in arrival order (Stage.Concurrency runs several at once;
// Stage.ProcessBatch takes a whole batch per call). Returning an error fails that record's
// attempt: the host retries it and dead-letters it after the stage's attempts. A panic in Process
// is recovered and reported the same way, as that record's error ("panic: ..." with the stack
// logged to stderr): a Go panic is a bug in how one record is handled, and the other records in
// the batch should not pay for it. Everything that kills the process — a signal (SIGSEGV in cgo
// code, SIGKILL by the host's watchdog), os.Exit, a Go fatal error (concurrent map writes, stack
// exhaustion, out of memory), a panic in a goroutine Process started — fails the whole worker:
// the host redelivers every record the process held, counts a failed attempt against the oldest
// with the exit reason and the last stderr lines, and starts a new process.
//
// # Throughput
//
// Records arrive a batch frame at a time, as many as the host's credits allow. A batch's records
// are decoded as views of the frame (their keys and payloads alias it, or the 256 KiB read
// buffer it arrived in: no allocation per record; keep a copy, not the slice, of anything you
// hold on to for long), each record's outputs are encoded as soon as Process returns them, and
// the outcomes go back in one results frame, with the credit they return, when no further batch
// is waiting (or every 2 ms, or every 256 KiB). For small records the per-call cost matters:
// Stage.ProcessBatch takes a whole batch per call (its outputs may be sub-slices of recs, with no
// allocation per record), and Stage.Concurrency spreads a batch over several goroutines for
// CPU-bound work.
//
// # Logging
//
// Write logs with package log or log/slog's default logger (both write to the process's real
// stderr): the host forwards each stderr line to its logger tagged with the stage, worker and pid,
// and quotes the last lines in crash reasons. Writes to os.Stderr and os.Stdout after Serve has
// started go through go-plugin's stdio stream and reach the host asynchronously, so they may be
// lost if the process crashes right after.
package sdk

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/plugins/internal/pluginproto"
)

// Stage is what a plugin does with records.
type Stage struct {
	// Process maps one record to zero (a filter), one or many (a splitter) output records, or
	// fails the record's attempt with an error, as a troupe.Func does. It may return rec itself,
	// with fields reassigned, as an output; it must not write into rec's Payload bytes (return a
	// new slice). ctx is cancelled when the plugin is asked to shut down; troupe.Attempt(ctx)
	// and troupe.StageName(ctx) tell which attempt at the record this is and the stage's name.
	// Process or ProcessBatch is required.
	Process func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error)
	// ProcessBatch, used instead of Process when set, handles the records of a batch frame at
	// once: it returns, for record i of recs, its outputs outs[i] and the error errs[i] that
	// fails its attempt (either slice may be nil: no outputs, no errors; otherwise each has
	// len(recs) elements). The rules of Process apply to each record; a panic fails the
	// attempt of every record of the call. troupe.Attempt(ctx) is 0 in ProcessBatch (a batch
	// is not one attempt). Batches are as large as the host's credits allow. The recs slice is
	// the SDK's, valid during the call (its records may be returned as outputs, and outs[i]
	// may be a sub-slice of it).
	ProcessBatch func(ctx context.Context, recs []troupe.Record) (outs [][]troupe.Record, errs []error)
	// Concurrency, when over 1, processes each batch on that many goroutines: Process is called
	// concurrently on different records of the batch (it must be safe for that), or
	// ProcessBatch on that many consecutive parts of it. The outcomes still go back in order,
	// a batch at a time. 0 or 1: one record after the other, each outcome reported as soon as
	// it is ready.
	Concurrency int
	// Setup, if set, is called once with the stage's options before the first record. An error
	// fails the worker's start (the host retries it with backoff) and is shown to the user.
	// JSON numbers arrive as int when integral and as float64 otherwise.
	Setup func(opts map[string]any) error
	// Teardown, if set, is called once when the plugin shuts down gracefully (the host closing
	// the worker), after the last record. It is not called when the host dies.
	Teardown func() error
}

// announcedVersion is the protocol version this SDK speaks. It is a variable only so that tests
// can build a plugin announcing another version with
// -ldflags=-X=github.com/troupe-dev/troupe/plugins/sdk.announcedVersion=2.0.
var announcedVersion = ipc.ProtocolVersion

func parseVersion(s string) (major, minor uint32, err error) {
	maj, min, ok := strings.Cut(s, ".")
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad protocol version %q", s)
	}
	return uint32(a), uint32(b), nil
}

// parentPollInterval is how often the plugin checks that its parent is still the host.
const parentPollInterval = 200 * time.Millisecond

// Serve runs the plugin until the host shuts it down, then exits the process; it never returns.
// Run directly rather than by a troupe host, it prints an explanation and exits with status 1.
func Serve(s Stage) {
	if s.Process == nil && s.ProcessBatch == nil {
		fmt.Fprintln(os.Stderr, "troupe plugin: sdk.Serve: Stage.Process and Stage.ProcessBatch are nil")
		os.Exit(2)
	}
	major, minor, err := parseVersion(announcedVersion)
	if err != nil {
		fmt.Fprintln(os.Stderr, "troupe plugin:", err)
		os.Exit(2)
	}
	startProfile()
	stderr := os.Stderr // go-plugin replaces os.Stderr with its stdio stream once serving
	srv := newServer(s, major, minor, stderr)

	go watchParent(os.Getppid(), stderr)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		srv.shutdown()
		exit(0, nil, "")
	}()

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pluginproto.Handshake(uint(major)),
		Plugins:         pluginproto.Set(&pluginproto.Plugin{Impl: srv}),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "go-plugin", Level: hclog.Error, Output: stderr,
		}),
	})
	// plugin.Serve returns when the host's go-plugin client stops the gRPC server.
	srv.shutdown()
	exit(0, nil, "")
}

// ServeBatch is Serve(Stage{ProcessBatch: f}): a plugin handling a batch of records per call.
func ServeBatch(f func(ctx context.Context, recs []troupe.Record) ([][]troupe.Record, []error)) {
	Serve(Stage{ProcessBatch: f})
}

// exit kills the plugin's descendants, then exits: whatever the plugin started does not outlive
// it, even a daemon that left its process group (see killDescendants). It says why on stderr
// after the kill (writing to the stderr pipe of a dead host raises SIGPIPE, which ends the
// process at once); msg may be "".
func exit(code int, stderr *os.File, msg string) {
	stopProfile()
	killDescendants()
	if msg != "" {
		fmt.Fprintln(stderr, "troupe plugin: "+msg)
	}
	os.Exit(code)
}

// watchParent exits the process when its parent changes: the host died and the plugin was
// reparented. (The host also sets a parent-death signal; this covers hosts that cannot.)
func watchParent(ppid int, stderr *os.File) {
	for range time.Tick(parentPollInterval) {
		if os.Getppid() != ppid {
			exit(1, stderr, fmt.Sprintf("parent process %d is gone; exiting", ppid))
		}
	}
}
