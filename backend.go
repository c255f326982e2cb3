package troupe

import (
	"context"
	"errors"
)

// Backend runs a stage's records outside the runtime's workers, typically in another process (see
// package plugins). A BackendFactory makes one Backend per worker incarnation; when a worker is
// restarted its Backend is closed and a new one is made.
type Backend interface {
	// Submit hands tasks to the backend, in order. It must not block for long: the worker only
	// submits what the backend's grants allow (see Outcomes.Grant). Outcomes come back through the
	// Outcomes given to the factory, in submission order. The backend may keep the slice.
	Submit(batch []Task) error
	// Close stops the backend and releases everything it holds, within ctx's deadline.
	Close(ctx context.Context) error
}

// Task is one record handed to a Backend, with which attempt at it this is (1 for the first).
type Task struct {
	Record  Record
	Attempt int
}

// Result is a Backend's outcome for one task: its outputs (none: the record was filtered out),
// or the error that failed the attempt (then Outputs is ignored).
type Result struct {
	Outputs []Record
	Err     error
}

// Outcomes receives what a Backend produces. Its methods are safe to call from any goroutine.
type Outcomes interface {
	// Results reports outcomes for the oldest submitted tasks not yet reported, one per task, in
	// order. The runtime keeps the outputs (it owns them from then on: the backend must not change
	// them).
	Results(rs []Result)
	// Grant gives the worker permission to submit n more tasks.
	Grant(n int)
	// Fail reports that the backend died (its process exited, its connection broke, a limit was
	// crossed). Every task it holds is redelivered; the first unreported one counts a failed
	// attempt with err as its reason, unless err is a BackendFault (the backend broke its
	// protocol: no record is to blame).
	Fail(err error)
}

// WorkerInfo names one incarnation of a stage worker.
type WorkerInfo struct {
	Stage       string
	Index       int // 0-based worker index within the stage
	Incarnation int // 0 for the first start, incremented on every restart
	Options     map[string]any
}

// BackendFactory starts a Backend for one worker incarnation. An error is a failed start: the
// worker is restarted under the stage's restart policy, like a crash, unless the error is a
// PermanentError (a start that can never succeed), which fails the run at once.
type BackendFactory func(ctx context.Context, w WorkerInfo, out Outcomes) (Backend, error)

// BackendFault is implemented by the errors a Backend reports to Outcomes.Fail when the backend
// itself is at fault and none of the records it holds is (it broke its protocol: answered a
// record twice, reported outputs for a record it was not given). The records are redelivered
// and no attempt is charged. The runtime checks for it with errors.As, so a backend need not
// import troupe to implement it.
type BackendFault interface {
	BackendFault() bool
}

// IsBackendFault says whether err, or an error it wraps, is a BackendFault that says so.
func IsBackendFault(err error) bool {
	var f BackendFault
	return errors.As(err, &f) && f.BackendFault()
}

// PermanentError is implemented by the errors a BackendFactory returns for a start that can never
// succeed, however often it is retried: a missing executable, a checksum mismatch, a program
// that does not speak the backend's protocol. Such an error fails the run at once; any other
// failed start is retried under the stage's restart policy, like a crash.
type PermanentError interface {
	Permanent() bool
}

// IsPermanent says whether err, or an error it wraps, is a PermanentError that says so.
func IsPermanent(err error) bool {
	var p PermanentError
	return errors.As(err, &p) && p.Permanent()
}
