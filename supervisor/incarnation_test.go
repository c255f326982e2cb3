package supervisor

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// started is one call of an OnStart hook.
type started struct {
	pid *actor.PID
	n   int
}

// starts collects the calls of an OnStart hook.
type starts struct {
	mu    sync.Mutex
	calls []started
	ch    chan struct{}
}

func newStarts() *starts { return &starts{ch: make(chan struct{}, 1)} }

func (s *starts) hook(pid *actor.PID, n int) {
	s.mu.Lock()
	s.calls = append(s.calls, started{pid, n})
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// wait waits for the hook's call number i (from 0) and returns it.
func (s *starts) wait(t testing.TB, i int) started {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		s.mu.Lock()
		if len(s.calls) > i {
			c := s.calls[i]
			s.mu.Unlock()
			return c
		}
		s.mu.Unlock()
		select {
		case <-s.ch:
		case <-deadline:
			t.Fatalf("timed out waiting for OnStart call %d", i)
		}
	}
}

func (s *starts) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// whoMsg asks a counting worker which incarnation it is.
type whoMsg struct{ reply chan who }

type who struct {
	id string
	n  int
	ok bool
}

// counting is a worker that answers whoMsg and exits on exitMsg; its start
// function records the numbers it is given.
func counting(name string, onStart func(*actor.PID, int), given *[]int, mu *sync.Mutex, fail func(n int) bool) ChildSpec {
	return ChildSpec{
		Name:    name,
		OnStart: onStart,
		StartIncarnation: func(n int) (*actor.Props, error) {
			mu.Lock()
			*given = append(*given, n)
			mu.Unlock()
			if fail != nil && fail(n) {
				return nil, errStart
			}
			return actor.PropsFromFunc(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case whoMsg:
					n, ok := Incarnation(ctx)
					m.reply <- who{ctx.Self().Id, n, ok}
				case exitMsg:
					Exit(ctx, m.reason)
				}
			}), nil
		},
	}
}

func ask(t testing.TB, system *actor.ActorSystem, pid *actor.PID) who {
	t.Helper()
	reply := make(chan who, 1)
	system.Root.Send(pid, whoMsg{reply: reply})
	select {
	case w := <-reply:
		return w
	case <-time.After(waitTimeout):
		t.Fatalf("no answer from %s", pid.Id)
		return who{}
	}
}

// The supervisor hands out the PID and number of every incarnation of a
// child: at the first start, after a restart, after RestartChild, and the
// numbers of failed starts are used up. A message to the PID from OnStart
// reaches the incarnation it names, and the first PID keeps reaching the
// current incarnation.
func TestOnStartReportsEveryIncarnation(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	hook := newStarts()
	var mu sync.Mutex
	var given []int
	failNext := make(chan struct{}, 1)
	fail := func(int) bool {
		select {
		case <-failNext:
			return true
		default:
			return false
		}
	}
	sup := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 10), Children: []ChildSpec{
		counting("w", hook.hook, &given, &mu, fail),
	}})

	first := hook.wait(t, 0)
	if first.n != 0 || first.pid == nil || first.pid.Id != "root/w" {
		t.Fatalf("first OnStart = %+v", first)
	}
	if w := ask(t, system, first.pid); w != (who{"root/w", 0, true}) {
		t.Errorf("first incarnation says %+v", w)
	}
	info, err := sup.Child("w")
	if err != nil || info.PID != first.pid || info.Incarnation != 0 {
		t.Errorf("Child(w) = %+v, %v", info, err)
	}

	// A crash: the restart reports a new PID (same id) and number 1.
	system.Root.Send(first.pid, exitMsg{reason: errBoom})
	second := hook.wait(t, 1)
	if second.n != 1 || second.pid == first.pid || second.pid.Id != "root/w" {
		t.Fatalf("OnStart after the restart = %+v (first %p)", second, first.pid)
	}
	if w := ask(t, system, second.pid); w.n != 1 {
		t.Errorf("restarted incarnation says %+v", w)
	}
	if w := ask(t, system, first.pid); w.n != 1 {
		t.Errorf("the first PID reaches %+v, want the current incarnation", w)
	}

	// TerminateChild and RestartChild: number 2.
	if err := sup.TerminateChild("w"); err != nil {
		t.Fatal(err)
	}
	if err := sup.RestartChild("w"); err != nil {
		t.Fatal(err)
	}
	if third := hook.wait(t, 2); third.n != 2 || ask(t, system, third.pid).n != 2 {
		t.Errorf("OnStart after RestartChild = %+v", third)
	}

	// A restart whose first attempt fails: number 3 is used up by the
	// failed start, the incarnation that runs is number 4.
	failNext <- struct{}{}
	if err := sup.KillChild("w", errBoom); err != nil {
		t.Fatal(err)
	}
	if fourth := hook.wait(t, 3); fourth.n != 4 || ask(t, system, fourth.pid).n != 4 {
		t.Errorf("OnStart after a failed start = %+v", fourth)
	}
	if info, err := sup.Child("w"); err != nil || info.Incarnation != 4 || info.Restarts != 2 {
		t.Errorf("Child(w) = %+v, %v", info, err)
	}
	mu.Lock()
	if want := []int{0, 1, 2, 3, 4}; !equalInts(given, want) {
		t.Errorf("StartIncarnation was given %v, want %v", given, want)
	}
	mu.Unlock()
	if hook.len() != 4 {
		t.Errorf("OnStart called %d times, want 4", hook.len())
	}
	if evs := events.matching("root/w", Restarted); len(evs) != 2 {
		t.Errorf("restarted events: %v", evs)
	}
	if _, err := sup.Child("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Child(nope) = %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The numbering of a child supervisor's children goes on when the child
// supervisor is restarted, and its own OnStart hands out its new PID.
func TestOnStartAcrossANestedRestart(t *testing.T) {
	system := newSystem(t)
	innerHook, wHook := newStarts(), newStarts()
	var mu sync.Mutex
	var given []int
	inner := Spec{Name: "inner", Flags: flags(OneForOne, 3), Children: []ChildSpec{counting("w", wHook.hook, &given, &mu, nil)}}
	innerChild := inner.Child(Permanent)
	innerChild.OnStart = innerHook.hook
	sup := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 3), Children: []ChildSpec{innerChild}})

	i0, w0 := innerHook.wait(t, 0), wHook.wait(t, 0)
	if i0.n != 0 || i0.pid.Id != "root/inner" || w0.n != 0 || w0.pid.Id != "root/inner/w" {
		t.Fatalf("first starts: inner %+v, w %+v", i0, w0)
	}
	// OnStart of the child supervisor runs once its children have
	// started: the handle works at once.
	if names := childNames(t, Ref(system, i0.pid)); len(names) != 1 || names[0] != "w" {
		t.Errorf("children of inner: %v", names)
	}

	if err := sup.KillChild("inner", errBoom); err != nil {
		t.Fatal(err)
	}
	i1, w1 := innerHook.wait(t, 1), wHook.wait(t, 1)
	if i1.n != 1 || i1.pid == i0.pid || w1.n != 1 || w1.pid == w0.pid {
		t.Fatalf("after the restart of inner: inner %+v, w %+v", i1, w1)
	}
	if w := ask(t, system, w1.pid); w != (who{"root/inner/w", 1, true}) {
		t.Errorf("w after the restart of inner says %+v", w)
	}
	if info, err := Ref(system, i1.pid).Child("w"); err != nil || info.Incarnation != 1 || info.Restarts != 0 {
		t.Errorf("inner's Child(w) = %+v, %v", info, err)
	}
}

// A panic in OnStart is a crash of the incarnation just started: it is
// restarted like one that panicked in its *actor.Started handler.
func TestOnStartPanicIsACrash(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	hook := newStarts()
	var mu sync.Mutex
	var given []int
	c := counting("w", func(pid *actor.PID, n int) {
		hook.hook(pid, n)
		if n == 0 {
			panic("hook")
		}
	}, &given, &mu, nil)
	mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 3), Children: []ChildSpec{c}})

	exited := events.wait(t, "root/w", Exited)
	var pe *PanicError
	if !errors.As(exited.Reason, &pe) || pe.Value != "hook" {
		t.Errorf("exit reason = %v", exited.Reason)
	}
	if again := hook.wait(t, 1); again.n != 1 || ask(t, system, again.pid).n != 1 {
		t.Errorf("OnStart after the crash = %+v", again)
	}
}

func TestIncarnationOutsideASupervisor(t *testing.T) {
	system := newSystem(t)
	reply := make(chan who, 1)
	pid := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(whoMsg); ok {
			n, ok := Incarnation(ctx)
			reply <- who{ctx.Self().Id, n, ok}
		}
	}))
	system.Root.Send(pid, whoMsg{})
	select {
	case w := <-reply:
		if w.ok {
			t.Errorf("Incarnation of an unsupervised actor = %+v", w)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no answer")
	}
	system.Root.Stop(pid)
}

func TestStartAndStartIncarnationExclusive(t *testing.T) {
	c := ChildSpec{Name: "w", Start: func() (*actor.Props, error) { return nil, nil }, StartIncarnation: func(int) (*actor.Props, error) { return nil, nil }}
	checkFieldErrors(t, "both", c.Validate(), []want{{"", "w", "start", "set only one of Start and StartIncarnation"}})
}

// A PID handed out for an incarnation that hangs and is abandoned reaches
// the next incarnation, not the frozen one (protoactor marks the abandoned
// process dead when the supervisor removes it from the ProcessRegistry, so
// the PID looks its id up again).
func TestFirstPIDReachesTheIncarnationAfterAnAbandonedOne(t *testing.T) {
	defer func(d time.Duration) { abandonAfter = d }(abandonAfter)
	abandonAfter = 100 * time.Millisecond

	system := newSystem(t)
	events := watchEvents(t, system)
	hook := newStarts()
	release := make(chan struct{})
	defer close(release)
	hung := make(chan struct{}, 1)
	c := ChildSpec{Name: "w", Shutdown: BrutalKill, OnStart: hook.hook, Start: func() (*actor.Props, error) {
		return actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case whoMsg:
				n, ok := Incarnation(ctx)
				m.reply <- who{ctx.Self().Id, n, ok}
			case struct{}: // hang
				hung <- struct{}{}
				<-release
			}
		}), nil
	}}
	sup := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 3), Children: []ChildSpec{c}})
	first := hook.wait(t, 0)
	if w := ask(t, system, first.pid); w.n != 0 { // caches the first process in the PID
		t.Fatalf("first incarnation says %+v", w)
	}
	system.Root.Send(first.pid, struct{}{})
	<-hung
	if err := sup.KillChild("w", errBoom); err != nil {
		t.Fatal(err)
	}
	events.wait(t, "root/w", Abandoned)
	second := hook.wait(t, 1)
	if w := ask(t, system, first.pid); w.n != 1 {
		t.Errorf("the first PID reaches %+v, want incarnation 1", w)
	}
	if second.n != 1 || ask(t, system, second.pid).n != 1 {
		t.Errorf("second OnStart = %+v", second)
	}
}
