package policy

// RestartType decides whether a child is restarted after it exits.
type RestartType int

const (
	// Permanent children are always restarted, even after a normal exit.
	Permanent RestartType = iota
	// Transient children are restarted only after an abnormal exit (a
	// reason other than nil or a shutdown). After a normal exit the
	// specification is kept, not running.
	Transient
	// Temporary children are never restarted; their specification is
	// removed when they end, also when they are stopped as bystanders of a
	// one_for_all or rest_for_one restart.
	Temporary
)

var restartNames = []string{"permanent", "transient", "temporary"}

// String returns the OTP name of r, e.g. "transient".
func (r RestartType) String() string { return enumName(restartNames, int(r), "RestartType") }

// ParseRestartType parses "permanent", "transient" or "temporary".
// Another name is an error that errors.As turns into a [*FieldError] for
// "restart".
func ParseRestartType(s string) (RestartType, error) {
	i, err := parseEnum(restartNames, s, "restart type", "restart")
	return RestartType(i), err
}

// ChildType tells workers from supervisors.
type ChildType int

const (
	// Worker is an ordinary child actor.
	Worker ChildType = iota
	// SupervisorType is a child that is itself a supervisor.
	SupervisorType
)

var childTypeNames = []string{"worker", "supervisor"}

// String returns "worker" or "supervisor".
func (t ChildType) String() string { return enumName(childTypeNames, int(t), "ChildType") }

// ChildState is the state of a supervised child.
type ChildState int

const (
	// ChildRunning: the child has a live incarnation (possibly being
	// stopped).
	ChildRunning ChildState = iota
	// ChildRestarting: the child has exited and waits to be restarted
	// (backoff delay, or its start failed and will be retried).
	ChildRestarting
	// ChildStopped: the child's specification is kept but it is not
	// running.
	ChildStopped
)

var childStateNames = []string{"running", "restarting", "stopped"}

// String returns "running", "restarting" or "stopped".
func (s ChildState) String() string { return enumName(childStateNames, int(s), "ChildState") }
