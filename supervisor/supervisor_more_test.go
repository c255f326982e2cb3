package supervisor

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

func TestInfinityWaitsAndSupervisorStaysResponsive(t *testing.T) {
	system := newSystem(t)
	rec := newRecorder()
	release := make(chan struct{})
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "w", workerOpts{shutdown: Infinity, block: release,
			kill: func(*actor.PID) { t.Error("Kill called with Infinity") }}),
	}})
	mark := rec.len()
	result := make(chan error, 1)
	go func() { result <- sup.TerminateChild("w") }()
	rec.waitFor(t, mark, "stop:w")

	// The supervisor waits for w without blocking its mailbox.
	if info, _ := childInfo(t, sup, "w"); info.State != ChildRunning {
		t.Errorf("while stopping: %+v", info)
	}
	select {
	case err := <-result:
		t.Fatalf("TerminateChild returned %v before the child stopped", err)
	default:
	}
	close(release)
	select {
	case err := <-result:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("TerminateChild did not return")
	}
	if info, _ := childInfo(t, sup, "w"); info.State != ChildStopped {
		t.Errorf("after stop: %+v", info)
	}
}

func TestUnkillableChildIsAbandonedAndItsNameReused(t *testing.T) {
	defer func(d time.Duration) { abandonAfter = d }(abandonAfter)
	abandonAfter = 100 * time.Millisecond

	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	release := make(chan struct{})
	var kills counter
	sup, err := Start(system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "zombie", workerOpts{shutdown: Shutdown(30 * time.Millisecond), block: release,
			kill: func(*actor.PID) { kills.inc() }}), // the kill does not help
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.TerminateChild("zombie"); err != nil {
		t.Fatal(err)
	}
	if kills.get() != 1 {
		t.Errorf("Kill called %d times", kills.get())
	}
	events.wait(t, "root/zombie", Abandoned)
	if e := events.wait(t, "root/zombie", Stopped); !errors.Is(e.Reason, ErrKilled) {
		t.Errorf("Stopped reason %v", e.Reason)
	}

	// The name is free again although the old incarnation still hangs.
	if err := sup.RestartChild("zombie"); err != nil {
		t.Fatalf("RestartChild after abandon: %v", err)
	}
	mark := rec.len()
	close(release) // the zombie returns from Stopping and must stay frozen
	rec.waitFor(t, 0, "released:zombie")
	if id := ping(t, system, "root/zombie"); id != "root/zombie" {
		t.Errorf("new incarnation answered as %q", id)
	}
	// The new incarnation is still registered: an ordered Stop reaches it
	// and it stops gracefully (not killed, not abandoned).
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := events.matching("root/zombie", Stopped); len(got) != 2 || !errors.Is(got[1].Reason, ErrShutdown) {
		t.Errorf("Stopped events = %v, want the new incarnation stopped with ErrShutdown", got)
	}
	if n := len(events.matching("root/zombie", Abandoned)); n != 1 {
		t.Errorf("%d Abandoned events, want 1", n)
	}
	if !slices.Contains(rec.since(mark), "stop:zombie") {
		t.Errorf("new incarnation was not stopped: %v", rec.since(mark))
	}
}

func TestStopOrderInATree(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	sub := Spec{Name: "sub", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "x", workerOpts{}), worker(rec, "y", workerOpts{}),
	}}
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "a", workerOpts{}), sub.Child(Permanent), worker(rec, "b", workerOpts{}),
	}})
	if got, want := rec.since(0), []string{"start:a", "start:x", "start:y", "start:b"}; !slices.Equal(got, want) {
		t.Errorf("start order = %v, want %v", got, want)
	}
	mark := rec.len()
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.since(mark), []string{"stop:b", "stop:y", "stop:x", "stop:a"}; !slices.Equal(got, want) {
		t.Errorf("stop order = %v, want %v", got, want)
	}
	if sup.Err() != nil {
		t.Errorf("Err() = %v", sup.Err())
	}
	events.wait(t, "root/sub", Stopped)
	events.wait(t, "root", Stopped)
	if err := sup.Stop(); !errors.Is(err, ErrSupervisorStopped) {
		t.Errorf("second Stop = %v", err)
	}
}

func TestShutdownCompletesWhenChildrenExitDuringIt(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	release := make(chan struct{})
	sup := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 10), Children: []ChildSpec{
		worker(rec, "a", workerOpts{}),
		worker(rec, "b", workerOpts{shutdown: Infinity, block: release}),
	}})
	stopped := make(chan error, 1)
	go func() { stopped <- sup.Stop() }()
	rec.waitFor(t, 0, "stop:b") // the supervisor now waits for b

	send(system, "root/a", exitMsg{errBoom}) // a dies on its own meanwhile
	events.wait(t, "root/a", Exited)
	close(release)

	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Stop hung")
	}
	if n := len(events.matching("root/a", Restarted)); n != 0 {
		t.Errorf("a was restarted during shutdown")
	}
	if sup.Err() != nil {
		t.Errorf("Err() = %v", sup.Err())
	}
}

func TestStoppedFromOutsideStillBoundsChildren(t *testing.T) {
	system := newSystem(t)
	rec := newRecorder()
	release := make(chan struct{})
	var kills counter
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "a", workerOpts{}),
		worker(rec, "slow", workerOpts{shutdown: Shutdown(50 * time.Millisecond), block: release,
			kill: func(*actor.PID) { kills.inc(); close(release) }}),
	}})
	system.Root.Stop(sup.PID()) // protoactor's stop, not Supervisor.Stop
	waitDone(t, sup)
	if kills.get() != 1 {
		t.Errorf("Kill called %d times, want 1", kills.get())
	}
}

// --- start ---

func TestStartFailureStopsStartedChildrenInReverse(t *testing.T) {
	system := newSystem(t)
	rec := newRecorder()
	bad := ChildSpec{Name: "c", Start: func() (*actor.Props, error) { return nil, errStart }}
	spec := Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "a", workerOpts{}), worker(rec, "b", workerOpts{}), bad,
	}}
	if _, err := Start(system, spec); !errors.Is(err, errStart) {
		t.Fatalf("Start = %v, want the start error", err)
	}
	if got, want := rec.since(0), []string{"start:a", "start:b", "stop:b", "stop:a"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
	// The name is free again.
	spec.Children = spec.Children[:2]
	mustStart(t, system, spec)
}

func TestNestedStartFailureFailsParentStart(t *testing.T) {
	system := newSystem(t)
	rec := newRecorder()
	sub := Spec{Name: "sub", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "x", workerOpts{}),
		{Name: "y", Start: func() (*actor.Props, error) { return nil, errStart }},
	}}
	_, err := Start(system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "a", workerOpts{}), sub.Child(Permanent),
	}})
	if !errors.Is(err, errStart) {
		t.Fatalf("Start = %v, want the nested start error", err)
	}
	if got, want := rec.since(0), []string{"start:a", "start:x", "stop:x", "stop:a"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
}

// --- admin contract ---

func TestAdminErrorContract(t *testing.T) {
	system := newSystem(t)
	rec := newRecorder()
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "w", workerOpts{}),
	}})
	dyn := worker(rec, "dyn", workerOpts{restart: Transient})
	steps := []struct {
		what string
		do   func() error
		want error
	}{
		{"start new", func() error { return sup.StartChild(dyn) }, nil},
		{"start running", func() error { return sup.StartChild(dyn) }, ErrAlreadyStarted},
		{"restart running", func() error { return sup.RestartChild("dyn") }, ErrRunning},
		{"delete running", func() error { return sup.DeleteChild("dyn") }, ErrRunning},
		{"terminate", func() error { return sup.TerminateChild("dyn") }, nil},
		{"terminate again", func() error { return sup.TerminateChild("dyn") }, nil},
		{"start terminated", func() error { return sup.StartChild(dyn) }, ErrAlreadyPresent},
		{"restart terminated", func() error { return sup.RestartChild("dyn") }, nil},
		{"terminate once more", func() error { return sup.TerminateChild("dyn") }, nil},
		{"delete terminated", func() error { return sup.DeleteChild("dyn") }, nil},
		{"delete deleted", func() error { return sup.DeleteChild("dyn") }, ErrNotFound},
		{"start deleted", func() error { return sup.StartChild(dyn) }, nil},
		{"terminate unknown", func() error { return sup.TerminateChild("nope") }, ErrNotFound},
		{"restart unknown", func() error { return sup.RestartChild("nope") }, ErrNotFound},
		{"delete unknown", func() error { return sup.DeleteChild("nope") }, ErrNotFound},
		{"kill unknown", func() error { return sup.KillChild("nope", nil) }, ErrNotFound},
	}
	for _, s := range steps {
		if err := s.do(); !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", s.what, err, s.want)
		}
	}
	if got := childNames(t, sup); !slices.Equal(got, []string{"w", "dyn"}) {
		t.Errorf("children = %v", got)
	}

	invalid := []ChildSpec{
		{Name: "", Start: dyn.Start},
		{Name: "nostart"},
		{Name: "sig", Start: dyn.Start, Significant: true}, // permanent
	}
	for _, c := range invalid {
		if err := sup.StartChild(c); err == nil {
			t.Errorf("StartChild(%+v) accepted", c)
		}
	}
	failing := ChildSpec{Name: "failing", Start: func() (*actor.Props, error) { return nil, errStart }}
	if err := sup.StartChild(failing); !errors.Is(err, errStart) {
		t.Errorf("failed start = %v", err)
	}
	if _, found := childInfo(t, sup, "failing"); found {
		t.Error("spec of a child whose start failed was kept")
	}
	panicking := ChildSpec{Name: "panicking", Start: func() (*actor.Props, error) { panic("in start") }}
	var pe *PanicError
	if err := sup.StartChild(panicking); !errors.As(err, &pe) {
		t.Errorf("panicking start = %v", err)
	}
}

func TestTemporaryChildIsRemovedWhenTerminated(t *testing.T) {
	system := newSystem(t)
	rec := newRecorder()
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "tmp", workerOpts{restart: Temporary}),
	}})
	if err := sup.TerminateChild("tmp"); err != nil {
		t.Fatal(err)
	}
	if names := childNames(t, sup); len(names) != 0 {
		t.Errorf("children = %v", names)
	}
}

func TestWhichAndCountChildren(t *testing.T) {
	system := newSystem(t)
	rec := newRecorder()
	sub := Spec{Name: "sub", Flags: DefaultFlags(), Children: []ChildSpec{worker(rec, "x", workerOpts{})}}
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "w1", workerOpts{}),
		sub.Child(Permanent),
		worker(rec, "w2", workerOpts{restart: Transient}),
	}})
	if err := sup.TerminateChild("w2"); err != nil {
		t.Fatal(err)
	}
	infos, err := sup.WhichChildren()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		typ   ChildType
		state ChildState
		id    string
	}{
		{"w1", Worker, ChildRunning, "root/w1"},
		{"sub", SupervisorType, ChildRunning, "root/sub"},
		{"w2", Worker, ChildStopped, ""},
	}
	if len(infos) != len(want) {
		t.Fatalf("WhichChildren = %+v", infos)
	}
	for i, w := range want {
		got := infos[i]
		id := ""
		if got.PID != nil {
			id = got.PID.Id
		}
		if got.Name != w.name || got.Type != w.typ || got.State != w.state || id != w.id {
			t.Errorf("child %d = %+v (id %q), want %+v", i, got, id, w)
		}
	}
	counts, err := sup.CountChildren()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{Specs: 3, Active: 2, Supervisors: 1, Workers: 2}); counts != want {
		t.Errorf("CountChildren = %+v, want %+v", counts, want)
	}

	// A handle to the nested supervisor.
	nested := Ref(system, infos[1].PID)
	if got := childNames(t, nested); !slices.Equal(got, []string{"x"}) {
		t.Errorf("nested children = %v", got)
	}
	if err := nested.TerminateChild("x"); err != nil {
		t.Error(err)
	}

	// Actors can talk to a supervisor with plain messages.
	res, err := system.Root.RequestFuture(sup.PID(), &CountChildren{}, waitTimeout).Result()
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := res.(*Reply); !ok || r.Counts.Specs != 3 {
		t.Errorf("reply = %#v", res)
	}

	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := sup.WhichChildren(); !errors.Is(err, ErrSupervisorStopped) {
		t.Errorf("WhichChildren after Stop = %v", err)
	}
	if _, err := Ref(system, infos[1].PID).WhichChildren(); !errors.Is(err, ErrSupervisorStopped) {
		t.Errorf("Ref to a stopped supervisor: %v", err)
	}
}

func TestKillChildInjectsAnAbnormalExit(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	errHung := errors.New("hung")
	sup := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 1), Children: []ChildSpec{
		worker(rec, "w", workerOpts{restart: Transient}),
	}})
	if err := sup.KillChild("w", errHung); err != nil {
		t.Fatal(err)
	}
	if e := events.wait(t, "root/w", Exited); !errors.Is(e.Reason, errHung) {
		t.Errorf("Exited reason = %v", e.Reason)
	}
	events.wait(t, "root/w", Restarted) // transient + abnormal: restarted

	// A stage's distributor sends KillChild straight from an actor; that is
	// the second restart within the period: the supervisor gives up.
	system.Root.Send(sup.PID(), &KillChild{Name: "w", Reason: errHung})
	waitDone(t, sup)
	var esc *EscalationError
	if !errors.As(sup.Err(), &esc) || !errors.Is(esc, errHung) {
		t.Errorf("Err() = %v", sup.Err())
	}
}

// --- restarting state ---

func TestRestartingStateDuringFailingStartsCanBeTerminated(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	f := &flaky{}
	fl := flags(OneForOne, 1000)
	fl.Backoff = Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}
	sup, err := Start(system, Spec{Name: "root", Flags: fl, Children: []ChildSpec{
		f.spec(rec, "w"), worker(rec, "other", workerOpts{}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	send(system, "root/w", exitMsg{errBoom})
	events.waitN(t, "root/w", Exited, 3) // the crash and two failed starts

	info, _ := childInfo(t, sup, "w")
	if info.State != ChildRestarting || info.PID != nil {
		t.Errorf("during failing restarts: %+v", info)
	}
	if err := sup.RestartChild("w"); !errors.Is(err, ErrRestarting) {
		t.Errorf("RestartChild while restarting = %v", err)
	}
	if err := sup.DeleteChild("w"); !errors.Is(err, ErrRestarting) {
		t.Errorf("DeleteChild while restarting = %v", err)
	}
	if err := sup.TerminateChild("w"); err != nil {
		t.Fatal(err)
	}
	attempts := f.count()
	if info, _ := childInfo(t, sup, "w"); info.State != ChildStopped {
		t.Errorf("after TerminateChild: %+v", info)
	}
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
	if f.count() != attempts {
		t.Errorf("start attempts went on after TerminateChild: %d -> %d", attempts, f.count())
	}
}

func TestStopWhileRestarting(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	f := &flaky{}
	fl := flags(OneForOne, 1000)
	fl.Backoff = Backoff{Min: 50 * time.Millisecond, Max: 50 * time.Millisecond}
	sup, err := Start(system, Spec{Name: "root", Flags: fl, Children: []ChildSpec{f.spec(newRecorder(), "w")}})
	if err != nil {
		t.Fatal(err)
	}
	send(system, "root/w", exitMsg{errBoom})
	events.waitN(t, "root/w", Exited, 2)
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
	if sup.Err() != nil {
		t.Errorf("Err() = %v", sup.Err())
	}
}

// --- significant children ---

func TestAutoShutdown(t *testing.T) {
	significant := func(rec *recorder, name string) ChildSpec {
		return worker(rec, name, workerOpts{restart: Transient, significant: true})
	}
	t.Run("any_significant", func(t *testing.T) {
		system := newSystem(t)
		rec := newRecorder()
		fl := DefaultFlags()
		fl.AutoShutdown = AnySignificant
		sup := mustStart(t, system, Spec{Name: "root", Flags: fl, Children: []ChildSpec{
			worker(rec, "a", workerOpts{}), significant(rec, "s1"), significant(rec, "s2"),
		}})
		mark := rec.len()
		send(system, "root/s1", exitMsg{nil})
		waitDone(t, sup)
		if sup.Err() != nil {
			t.Errorf("Err() = %v, want nil", sup.Err())
		}
		if got, want := rec.since(mark), []string{"stop:s1", "stop:s2", "stop:a"}; !slices.Equal(got, want) {
			t.Errorf("log = %v, want %v", got, want)
		}
	})
	t.Run("all_significant", func(t *testing.T) {
		system := newSystem(t)
		events := watchEvents(t, system)
		rec := newRecorder()
		fl := flags(OneForOne, 5)
		fl.AutoShutdown = AllSignificant
		sup := mustStart(t, system, Spec{Name: "root", Flags: fl, Children: []ChildSpec{
			worker(rec, "a", workerOpts{}), significant(rec, "s1"), significant(rec, "s2"),
		}})
		send(system, "root/s1", exitMsg{nil})
		events.wait(t, "root/s1", Exited)
		if info, _ := childInfo(t, sup, "s1"); info.State != ChildStopped {
			t.Errorf("s1 = %+v", info)
		}
		send(system, "root/s2", exitMsg{errBoom}) // abnormal: restarted, no shutdown
		events.wait(t, "root/s2", Restarted)
		send(system, "root/s2", exitMsg{ErrShutdown})
		waitDone(t, sup)
		if sup.Err() != nil {
			t.Errorf("Err() = %v, want nil", sup.Err())
		}
	})
}

// --- reasons and events ---

func TestPanicReasonCarriesValueAndStack(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{worker(rec, "w", workerOpts{})}})
	send(system, "root/w", panicMsg{"boom"})
	e := events.wait(t, "root/w", Exited)
	var pe *PanicError
	if !errors.As(e.Reason, &pe) {
		t.Fatalf("reason = %#v, want *PanicError", e.Reason)
	}
	if pe.Value != "boom" {
		t.Errorf("Value = %v", pe.Value)
	}
	if !strings.Contains(string(pe.Stack), "workerReceive") {
		t.Errorf("stack does not show the panicking function:\n%s", pe.Stack)
	}
	if !strings.HasPrefix(pe.Error(), "panic: boom\n") {
		t.Errorf("Error() = %q", pe.Error())
	}
	events.wait(t, "root/w", Restarted)
}

func TestEventsArePublishedWithPathsAndTimes(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	convert := Spec{Name: "convert", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "worker-1", workerOpts{}), worker(rec, "worker-2", workerOpts{}),
	}}
	before := time.Now()
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{convert.Child(Permanent)}})
	send(system, "root/convert/worker-2", exitMsg{errBoom})
	exited := events.wait(t, "root/convert/worker-2", Exited)
	restarted := events.wait(t, "root/convert/worker-2", Restarted)
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := events.wait(t, "root/convert/worker-2", Stopped)
	for _, e := range []Event{events.wait(t, "root/convert/worker-2", Started), exited, restarted, stopped} {
		if e.Time.Before(before) || e.Time.After(time.Now()) {
			t.Errorf("%v: time %v out of range", e, e.Time)
		}
	}
	if restarted.Restarts != 1 || !errors.Is(exited.Reason, errBoom) || !errors.Is(stopped.Reason, ErrShutdown) {
		t.Errorf("events: %v / %v / %v", exited, restarted, stopped)
	}
	events.wait(t, "root/convert", Stopped)
	events.wait(t, "root", Stopped)
}

// --- validation and names ---

func TestValidate(t *testing.T) {
	start := func() (*actor.Props, error) { return nil, nil }
	ok := DefaultFlags()
	cases := []struct {
		name string
		spec Spec
		ok   bool
	}{
		{"defaults", Spec{Name: "s", Flags: ok}, true},
		{"no name", Spec{Flags: ok}, false},
		{"zero period", Spec{Name: "s", Flags: Flags{Intensity: 1}}, false},
		{"negative intensity", Spec{Name: "s", Flags: Flags{Intensity: -1, Period: time.Second}}, false},
		{"unknown strategy", Spec{Name: "s", Flags: Flags{Strategy: 7, Period: time.Second}}, false},
		{"unknown auto_shutdown", Spec{Name: "s", Flags: Flags{AutoShutdown: 9, Period: time.Second}}, false},
		{"backoff max < min", Spec{Name: "s", Flags: Flags{Period: time.Second, Backoff: Backoff{Min: 2, Max: 1}}}, false},
		{"duplicate child", Spec{Name: "s", Flags: ok, Children: []ChildSpec{{Name: "a", Start: start}, {Name: "a", Start: start}}}, false},
		{"empty child name", Spec{Name: "s", Flags: ok, Children: []ChildSpec{{Start: start}}}, false},
		{"no start", Spec{Name: "s", Flags: ok, Children: []ChildSpec{{Name: "a"}}}, false},
		{"significant permanent", Spec{Name: "s", Flags: ok, Children: []ChildSpec{{Name: "a", Start: start, Significant: true}}}, false},
		{"significant transient", Spec{Name: "s", Flags: ok, Children: []ChildSpec{{Name: "a", Start: start, Significant: true, Restart: Transient}}}, true},
	}
	for _, tc := range cases {
		if err := tc.spec.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

func TestParseAndString(t *testing.T) {
	for _, s := range []Strategy{OneForOne, OneForAll, RestForOne} {
		if got, err := ParseStrategy(s.String()); err != nil || got != s {
			t.Errorf("ParseStrategy(%q) = %v, %v", s, got, err)
		}
	}
	for _, r := range []RestartType{Permanent, Transient, Temporary} {
		if got, err := ParseRestartType(r.String()); err != nil || got != r {
			t.Errorf("ParseRestartType(%q) = %v, %v", r, got, err)
		}
	}
	for _, a := range []AutoShutdown{Never, AnySignificant, AllSignificant} {
		if got, err := ParseAutoShutdown(a.String()); err != nil || got != a {
			t.Errorf("ParseAutoShutdown(%q) = %v, %v", a, got, err)
		}
	}
	if _, err := ParseStrategy("simple_one_for_one"); err == nil {
		t.Error("ParseStrategy accepted simple_one_for_one")
	}
	if s := Strategy(9).String(); s != "Strategy(9)" {
		t.Errorf("unknown strategy prints %q", s)
	}
	if BrutalKill.String() != "brutal_kill" || Infinity.String() != "infinity" || Shutdown(time.Second).String() != "1s" {
		t.Error("Shutdown.String")
	}
	if d := (DefaultFlags()); d.Strategy != OneForOne || d.Intensity != 1 || d.Period != 5*time.Second {
		t.Errorf("DefaultFlags = %+v", d)
	}
}
