package supervisor

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// --- strategies ---

// A crash of b among a, b, c, d: who is stopped (in which order) and who is
// started again (in which order).
func TestStrategyStopsInReverseAndRestartsInOrder(t *testing.T) {
	cases := []struct {
		strategy      Strategy
		wantRestarted []string
		want          []string
	}{
		{OneForOne, []string{"b"}, []string{"stop:b", "start:b"}},
		{OneForAll, []string{"a", "b", "c", "d"},
			[]string{"stop:b", "stop:d", "stop:c", "stop:a", "start:a", "start:b", "start:c", "start:d"}},
		{RestForOne, []string{"b", "c", "d"},
			[]string{"stop:b", "stop:d", "stop:c", "start:b", "start:c", "start:d"}},
	}
	for _, tc := range cases {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			system := newSystem(t)
			events := watchEvents(t, system)
			rec := newRecorder()
			spec := Spec{Name: "root", Flags: flags(tc.strategy, 10)}
			for _, n := range []string{"a", "b", "c", "d"} {
				spec.Children = append(spec.Children, worker(rec, n, workerOpts{}))
			}
			sup := mustStart(t, system, spec)
			if got, want := rec.since(0), []string{"start:a", "start:b", "start:c", "start:d"}; !slices.Equal(got, want) {
				t.Fatalf("initial start order = %v, want %v", got, want)
			}
			mark := rec.len()

			send(system, "root/b", exitMsg{errBoom})
			for _, n := range tc.wantRestarted {
				events.wait(t, "root/"+n, Restarted)
			}
			if got := rec.since(mark); !slices.Equal(got, tc.want) {
				t.Errorf("after crash of b: %v, want %v", got, tc.want)
			}
			if e := events.wait(t, "root/b", Exited); !errors.Is(e.Reason, errBoom) {
				t.Errorf("Exited reason = %v, want boom", e.Reason)
			}
			for _, n := range tc.wantRestarted {
				if n == "b" {
					continue
				}
				if e := events.wait(t, "root/"+n, Stopped); !errors.Is(e.Reason, ErrShutdown) {
					t.Errorf("bystander %s stopped with %v, want ErrShutdown", n, e.Reason)
				}
			}
			infos, _ := sup.WhichChildren()
			for _, i := range infos {
				wantRestarts := 0
				if slices.Contains(tc.wantRestarted, i.Name) {
					wantRestarts = 1
				}
				if i.State != ChildRunning || i.Restarts != wantRestarts {
					t.Errorf("%s: state %v restarts %d, want running, %d", i.Name, i.State, i.Restarts, wantRestarts)
				}
			}
		})
	}
}

// --- restart types x exit kinds ---

func TestRestartTypeByExitKind(t *testing.T) {
	exits := []struct {
		name     string
		msg      any
		abnormal bool
	}{
		{"normal", exitMsg{nil}, false},
		{"shutdown", exitMsg{ErrShutdown}, false},
		{"error", exitMsg{errBoom}, true},
		{"panic", panicMsg{"kaboom"}, true},
	}
	for _, restart := range []RestartType{Permanent, Transient, Temporary} {
		for _, exit := range exits {
			wantRestart := restart == Permanent || (restart == Transient && exit.abnormal)
			t.Run(restart.String()+"/"+exit.name, func(t *testing.T) {
				system := newSystem(t)
				events := watchEvents(t, system)
				rec := newRecorder()
				sup := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 10),
					Children: []ChildSpec{worker(rec, "w", workerOpts{restart: restart})}})

				send(system, "root/w", exit.msg)
				e := events.wait(t, "root/w", Exited)
				if isNormal(e.Reason) == exit.abnormal {
					t.Errorf("exit reason %v: normal=%v, want %v", e.Reason, isNormal(e.Reason), !exit.abnormal)
				}
				if wantRestart {
					events.wait(t, "root/w", Restarted)
					ping(t, system, "root/w")
					return
				}
				info, found := childInfo(t, sup, "w")
				switch restart {
				case Temporary:
					if found {
						t.Errorf("temporary child still present: %+v", info)
					}
				default:
					if !found || info.State != ChildStopped || info.PID != nil {
						t.Errorf("transient child after normal exit: %+v (found %v), want kept, stopped", info, found)
					}
				}
				if n := len(events.matching("root/w", Restarted)); n != 0 {
					t.Errorf("%d Restarted events, want none", n)
				}
			})
		}
	}
}

func TestTemporaryBystanderIsRemovedNotRestarted(t *testing.T) {
	for _, strategy := range []Strategy{OneForAll, RestForOne} {
		t.Run(strategy.String(), func(t *testing.T) {
			system := newSystem(t)
			events := watchEvents(t, system)
			rec := newRecorder()
			sup := mustStart(t, system, Spec{Name: "root", Flags: flags(strategy, 10), Children: []ChildSpec{
				worker(rec, "a", workerOpts{}),
				worker(rec, "tmp", workerOpts{restart: Temporary}),
				worker(rec, "c", workerOpts{}),
			}})
			crashed := "a" // rest_for_one and one_for_all both take tmp down with a
			mark := rec.len()
			send(system, "root/"+crashed, exitMsg{errBoom})
			events.wait(t, "root/c", Restarted)
			events.wait(t, "root/a", Restarted)
			if got := childNames(t, sup); !slices.Equal(got, []string{"a", "c"}) {
				t.Errorf("children = %v, want [a c]", got)
			}
			if got, want := rec.since(mark), []string{"stop:a", "stop:c", "stop:tmp", "start:a", "start:c"}; !slices.Equal(got, want) {
				t.Errorf("log = %v, want %v", got, want)
			}
		})
	}
}

// OTP's restart_multiple_children: when a child fails to start during a
// one_for_all or rest_for_one restart, the children that the strategy
// restarts with the failed one and that already run again are stopped
// (shutdown, reverse order) and that restart is tried again, the failed
// start counting towards the intensity. For one_for_all that is every
// child (supervisor_SUITE one_for_all_other_child_fails_restart: the
// restarted child1 goes down with shutdown before anything starts again);
// for rest_for_one it is the failed child and the ones after it, so b,
// restarted before c, keeps running (rest_for_one_other_child_fails_restart).
func TestFailedStartDuringGroupRestartRestartsTheGroupAgain(t *testing.T) {
	cases := []struct {
		strategy     Strategy
		want         []string
		wantRestarts map[string]int
	}{
		{OneForAll,
			[]string{"stop:b", "stop:d", "stop:c", "stop:a", "start:a", "start:b", "fail:c",
				"stop:b", "stop:a", "start:a", "start:b", "start:c", "start:d"},
			map[string]int{"a": 2, "b": 2, "c": 1, "d": 1}},
		{RestForOne,
			[]string{"stop:b", "stop:d", "stop:c", "start:b", "fail:c", "start:c", "start:d"},
			map[string]int{"a": 0, "b": 1, "c": 1, "d": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			system := newSystem(t)
			events := watchEvents(t, system)
			rec := newRecorder()
			// The crash and the failed start are two restarts: within the
			// intensity; the retry must not count a third.
			sup := mustStart(t, system, Spec{Name: "root", Flags: flags(tc.strategy, 2), Children: []ChildSpec{
				worker(rec, "a", workerOpts{}),
				worker(rec, "b", workerOpts{}),
				scripted(rec, "c", func(n int) bool { return n == 2 }), // the first restart fails
				worker(rec, "d", workerOpts{}),
			}})
			mark := rec.len()

			send(system, "root/b", exitMsg{errBoom})
			events.wait(t, "root/d", Restarted) // d starts last in the round that succeeds
			if got := rec.since(mark); !slices.Equal(got, tc.want) {
				t.Errorf("log = %v\nwant  %v", got, tc.want)
			}
			if e := events.wait(t, "root/c", Exited); !errors.Is(e.Reason, errStart) {
				t.Errorf("c Exited with %v, want the start error", e.Reason)
			}
			if tc.strategy == OneForAll {
				for _, e := range events.waitN(t, "root/a", Stopped, 2) {
					if !errors.Is(e.Reason, ErrShutdown) {
						t.Errorf("a stopped with %v, want ErrShutdown", e.Reason)
					}
				}
			}
			infos, err := sup.WhichChildren()
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range infos {
				if i.State != ChildRunning || i.Restarts != tc.wantRestarts[i.Name] {
					t.Errorf("%s: state %v restarts %d, want running, %d", i.Name, i.State, i.Restarts, tc.wantRestarts[i.Name])
				}
			}
			if n := len(events.matching("root", GaveUp)); n != 0 {
				t.Errorf("supervisor gave up (%d GaveUp events)", n)
			}
		})
	}
}

// A one_for_all or rest_for_one restart starts every child of the group
// whose specification the supervisor keeps, also one that was not running:
// stopped with TerminateChild or, transient, ended normally. OTP's
// restart/3 terminates and then starts all children of the group, whatever
// their pid (supervisor_SUITE tree: supchild3, terminated with
// terminate_child, runs again after the one_for_all restart).
func TestGroupRestartStartsEveryKeptChild(t *testing.T) {
	cases := []struct {
		name        string
		strategy    Strategy
		prepare     func(t *testing.T, sup *Supervisor, system *actor.ActorSystem, events *eventLog)
		crash       string
		want        []string
		wantStopped []string
	}{
		{"one_for_all/terminated", OneForAll,
			func(t *testing.T, sup *Supervisor, _ *actor.ActorSystem, _ *eventLog) {
				if err := sup.TerminateChild("b"); err != nil {
					t.Fatal(err)
				}
			},
			"a", []string{"stop:a", "stop:c", "start:a", "start:b", "start:c"}, nil},
		{"one_for_all/transient_normal_exit", OneForAll,
			func(t *testing.T, _ *Supervisor, system *actor.ActorSystem, events *eventLog) {
				send(system, "root/b", exitMsg{nil})
				events.wait(t, "root/b", Exited)
			},
			"c", []string{"stop:c", "stop:a", "start:a", "start:b", "start:c"}, nil},
		{"rest_for_one/terminated", RestForOne,
			func(t *testing.T, sup *Supervisor, _ *actor.ActorSystem, _ *eventLog) {
				for _, n := range []string{"a", "c"} {
					if err := sup.TerminateChild(n); err != nil {
						t.Fatal(err)
					}
				}
			},
			"b", []string{"stop:b", "start:b", "start:c"}, []string{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			system := newSystem(t)
			events := watchEvents(t, system)
			rec := newRecorder()
			sup := mustStart(t, system, Spec{Name: "root", Flags: flags(tc.strategy, 10), Children: []ChildSpec{
				worker(rec, "a", workerOpts{}),
				worker(rec, "b", workerOpts{restart: Transient}),
				worker(rec, "c", workerOpts{}),
			}})
			tc.prepare(t, sup, system, events)
			if info, _ := childInfo(t, sup, "b"); tc.strategy == OneForAll && info.State != ChildStopped {
				t.Fatalf("b before the crash: %+v, want stopped", info)
			}
			mark := rec.len()

			send(system, "root/"+tc.crash, exitMsg{errBoom})
			events.wait(t, "root/c", Restarted) // c starts last
			if got := rec.since(mark); !slices.Equal(got, tc.want) {
				t.Errorf("log = %v, want %v", got, tc.want)
			}
			infos, err := sup.WhichChildren()
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range infos {
				want := ChildRunning
				if slices.Contains(tc.wantStopped, i.Name) {
					want = ChildStopped
				}
				if i.State != want {
					t.Errorf("%s: %v, want %v", i.Name, i.State, want)
				}
			}
		})
	}
}

// A child whose restarts keep failing is retried through a message the
// supervisor sends itself (OTP's try_again_restart, OTP-9549), so admin
// requests are served between the attempts, also without backoff.
func TestFailingRestartsLeaveTheSupervisorResponsive(t *testing.T) {
	for _, strategy := range []Strategy{OneForOne, OneForAll, RestForOne} {
		t.Run(strategy.String(), func(t *testing.T) {
			system := newSystem(t)
			events := watchEvents(t, system)
			rec := newRecorder()
			var failing atomic.Bool
			w := scripted(rec, "w", func(int) bool { return failing.Load() })
			// Restarted in a loop, the supervisor would not reach this
			// intensity for hours.
			fl := Flags{Strategy: strategy, Intensity: math.MaxInt32, Period: time.Hour}
			sup := mustStart(t, system, Spec{Name: "root", Flags: fl, Children: []ChildSpec{
				worker(rec, "a", workerOpts{}), w,
			}})
			// A supervisor that does not answer in time gets the next start
			// to succeed, which ends its loop (and lets the test end).
			var released atomic.Bool
			release := time.AfterFunc(waitTimeout, func() {
				released.Store(true)
				failing.Store(false)
			})
			defer release.Stop()
			answered := func(what string) {
				t.Helper()
				if released.Load() {
					t.Fatalf("%s was answered only after the restart loop had been ended", what)
				}
			}

			failing.Store(true)
			send(system, "root/w", exitMsg{errBoom})
			events.waitN(t, "root/w", Exited, 3) // the crash and two failed starts: it loops

			info, _ := childInfo(t, sup, "w")
			answered("WhichChildren")
			if info.State != ChildRestarting || info.PID != nil {
				t.Errorf("w while its restarts fail: %+v, want restarting", info)
			}
			if _, err := sup.CountChildren(); err != nil {
				t.Fatal(err)
			}
			answered("CountChildren")
			if err := sup.StartChild(worker(rec, "late", workerOpts{restart: Temporary})); err != nil {
				t.Fatal(err)
			}
			answered("StartChild")
			if err := sup.Stop(); err != nil {
				t.Fatal(err)
			}
			answered("Stop")
			if err := sup.Err(); err != nil {
				t.Errorf("Err() = %v, want nil after Stop", err)
			}
		})
	}
}

// --- restart intensity ---

func TestIntensityIsCountedAcrossChildren(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	sup := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 2), Children: []ChildSpec{
		worker(rec, "a", workerOpts{}), worker(rec, "b", workerOpts{}), worker(rec, "c", workerOpts{}),
	}})

	send(system, "root/a", exitMsg{errBoom})
	events.wait(t, "root/a", Restarted)
	send(system, "root/b", exitMsg{errBoom})
	events.wait(t, "root/b", Restarted)
	mark := rec.len()
	send(system, "root/c", exitMsg{errBoom}) // third restart in the period: one too many

	waitDone(t, sup)
	var esc *EscalationError
	if !errors.As(sup.Err(), &esc) {
		t.Fatalf("Err() = %v, want *EscalationError", sup.Err())
	}
	if esc.Supervisor != "root" || esc.Restarts != 3 || !errors.Is(esc.Last, errBoom) || esc.Period != time.Minute {
		t.Errorf("escalation = %+v", esc)
	}
	if !strings.HasPrefix(esc.Error(), "supervisor root: reached max restart intensity (3 restarts in 1m0s); last: boom") {
		t.Errorf("Error() = %q", esc.Error())
	}
	if got, want := rec.since(mark), []string{"stop:c", "stop:b", "stop:a"}; !slices.Equal(got, want) {
		t.Errorf("give-up stop order = %v, want %v", got, want)
	}
	events.wait(t, "root", GaveUp)
	if e := events.wait(t, "root", Stopped); e.Reason != sup.Err() {
		t.Errorf("root Stopped reason = %v", e.Reason)
	}
	if n := len(events.matching("root", Escalated)); n != 0 {
		t.Errorf("a root supervisor has nobody to escalate to, got %d Escalated", n)
	}
}

func TestFailedStartsCountAsRestarts(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	f := &flaky{}
	sup := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 3), Children: []ChildSpec{f.spec(rec, "w")}})

	send(system, "root/w", exitMsg{errBoom})
	waitDone(t, sup)

	// 1 restart for the crash + 3 failed start attempts = 4 > 3.
	if got := f.count(); got != 1+3 {
		t.Errorf("start attempts = %d, want 4", got)
	}
	var esc *EscalationError
	if !errors.As(sup.Err(), &esc) || esc.Restarts != 4 || !errors.Is(esc.Last, errStart) {
		t.Errorf("Err() = %v, want escalation after 4 restarts, last the start error", sup.Err())
	}
	if n := len(events.matching("root/w", Exited)); n != 1+3 {
		t.Errorf("Exited events = %d, want 4 (the crash and 3 failed starts)", n)
	}
}

// --- escalation in a tree ---

func TestNestedSupervisorEscalatesToParent(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	convert := Spec{Name: "convert", Flags: flags(OneForOne, 1), Children: []ChildSpec{
		worker(rec, "worker-1", workerOpts{}), worker(rec, "worker-2", workerOpts{}),
	}}
	root := mustStart(t, system, Spec{Name: "root", Flags: flags(OneForOne, 5), Children: []ChildSpec{
		worker(rec, "logger", workerOpts{}),
		convert.Child(Permanent),
	}})
	for _, p := range []string{"root/logger", "root/convert", "root/convert/worker-1", "root/convert/worker-2"} {
		events.wait(t, p, Started)
	}
	if id := ping(t, system, "root/convert/worker-2"); id != "root/convert/worker-2" {
		t.Errorf("PID id = %q", id)
	}

	send(system, "root/convert/worker-2", exitMsg{errBoom})
	events.wait(t, "root/convert/worker-2", Restarted)
	mark := rec.len()
	send(system, "root/convert/worker-2", panicMsg{"again"}) // second restart in convert's period

	events.wait(t, "root/convert", GaveUp)
	events.wait(t, "root/convert", Escalated)
	exited := events.wait(t, "root/convert", Exited)
	var esc *EscalationError
	if !errors.As(exited.Reason, &esc) || esc.Supervisor != "root/convert" {
		t.Fatalf("parent saw convert exit with %v, want *EscalationError", exited.Reason)
	}
	var pe *PanicError
	if !errors.As(esc.Last, &pe) || pe.Value != "again" {
		t.Errorf("escalation's last reason = %v, want the panic", esc.Last)
	}
	events.wait(t, "root/convert", Restarted)
	events.waitN(t, "root/convert/worker-1", Started, 2)
	events.waitN(t, "root/convert/worker-2", Started, 2)
	if got, want := rec.since(mark), []string{"stop:worker-2", "stop:worker-1", "start:worker-1", "start:worker-2"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
	select {
	case <-root.Done():
		t.Fatalf("root ended: %v", root.Err())
	default:
	}
	if err := root.Stop(); err != nil || root.Err() != nil {
		t.Errorf("Stop = %v, Err = %v", err, root.Err())
	}
}

// --- backoff ---

func TestBackoffDelayBoundsAndJitter(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	for attempt, base := range []time.Duration{10, 20, 40, 80, 100, 100} {
		base *= time.Millisecond
		seen := map[time.Duration]bool{}
		var sum time.Duration
		const n = 2000
		for i := 0; i < n; i++ {
			d := b.Delay(attempt)
			if d < base/2 || d > base {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", attempt, d, base/2, base)
			}
			seen[d] = true
			sum += d
		}
		if len(seen) < n/2 {
			t.Errorf("Delay(%d): only %d distinct values in %d draws: no jitter", attempt, len(seen), n)
		}
		if mean := sum / n; mean < base*65/100 || mean > base*85/100 {
			t.Errorf("Delay(%d): mean %v, want about %v", attempt, mean, base*3/4)
		}
	}
	if d := (Backoff{}).Delay(3); d != 0 {
		t.Errorf("zero Backoff delay = %v, want 0", d)
	}
}

// The first restart within the period does not wait for the backoff, as in
// OTP; the second one does. With a backoff of an hour, the first crash is
// followed by a restart and the second leaves the child waiting.
func TestBackoffFirstRestartIsImmediateRepeatedOnesWait(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	fl := flags(OneForOne, 10)
	fl.Backoff = Backoff{Min: time.Hour, Max: time.Hour}
	sup := mustStart(t, system, Spec{Name: "root", Flags: fl, Children: []ChildSpec{worker(rec, "w", workerOpts{})}})

	send(system, "root/w", exitMsg{errBoom})
	events.wait(t, "root/w", Restarted)
	if info, _ := childInfo(t, sup, "w"); info.State != ChildRunning || info.Restarts != 1 {
		t.Fatalf("after the first crash: %+v, want running after 1 restart", info)
	}

	send(system, "root/w", exitMsg{errBoom})
	events.waitN(t, "root/w", Exited, 2)
	if info, _ := childInfo(t, sup, "w"); info.State != ChildRestarting || info.PID != nil || info.Restarts != 1 {
		t.Errorf("after the second crash: %+v, want waiting for its backoff", info)
	}
	if n := len(events.matching("root/w", Restarted)); n != 1 {
		t.Errorf("%d restarts, want 1 (the second waits an hour)", n)
	}
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
}

// The schedule: no delay for the first restart in the period, then the
// backoff's steps 0, 1, 2, ... (Min, 2*Min, ... capped at Max, jittered).
func TestRestartDelaySchedule(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 40 * time.Millisecond}
	if d := restartDelay(b, 1); d != 0 {
		t.Errorf("first restart: delay %v, want 0", d)
	}
	for n, base := range map[int]time.Duration{2: 10, 3: 20, 4: 40, 5: 40, 9: 40} {
		base *= time.Millisecond
		if d := restartDelay(b, n); d < base/2 || d > base {
			t.Errorf("restart %d in the period: delay %v, want in [%v, %v]", n, d, base/2, base)
		}
	}
	if d := restartDelay(Backoff{}, 5); d != 0 {
		t.Errorf("zero Backoff: delay %v, want 0", d)
	}
}

// A child that keeps failing to start: the first restart is immediate and
// the gaps between the later attempts grow from Min to Max.
func TestBackoffDelaysRestartsIncreasingly(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	f := &flaky{}
	fl := flags(OneForOne, 6)
	fl.Backoff = Backoff{Min: 20 * time.Millisecond, Max: 160 * time.Millisecond}
	sup := mustStart(t, system, Spec{Name: "root", Flags: fl, Children: []ChildSpec{f.spec(rec, "w")}})

	send(system, "root/w", exitMsg{errBoom})
	crash := events.wait(t, "root/w", Exited).Time
	waitDone(t, sup)

	attempts := f.times()[1:] // the first is the initial start
	if len(attempts) != 6 {
		t.Fatalf("%d restart attempts, want 6", len(attempts))
	}
	prev := crash
	var gaps []time.Duration
	for i, at := range attempts {
		gap := at.Sub(prev)
		prev = at
		gaps = append(gaps, gap)
		if i == 0 {
			continue // immediate: TestBackoffFirstRestartIsImmediateRepeatedOnesWait
		}
		base := min(fl.Backoff.Min<<(i-1), fl.Backoff.Max)
		if gap < base/2-2*time.Millisecond || gap > base+time.Second {
			t.Errorf("gap before attempt %d = %v, want within [%v, %v] (loosely)", i+1, gap, base/2, base)
		}
	}
	if gaps[4] <= gaps[1] {
		t.Errorf("delays did not grow: %v", gaps)
	}
}

// --- shutdown ---

func TestShutdownTimeoutCallsKill(t *testing.T) {
	system := newSystem(t)
	events := watchEvents(t, system)
	rec := newRecorder()
	release := make(chan struct{})
	var kills counter
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "slow", workerOpts{shutdown: Shutdown(50 * time.Millisecond), block: release,
			kill: func(*actor.PID) { kills.inc(); rec.add("kill:slow"); close(release) }}),
		worker(rec, "quick", workerOpts{shutdown: Shutdown(5 * time.Second),
			kill: func(*actor.PID) { t.Error("Kill called for a child that stopped in time") }}),
	}})

	mark := rec.len()
	if err := sup.TerminateChild("slow"); err != nil {
		t.Fatal(err)
	}
	if kills.get() != 1 {
		t.Errorf("Kill called %d times, want 1", kills.get())
	}
	if got, want := rec.since(mark), []string{"stop:slow", "kill:slow", "released:slow"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
	if e := events.wait(t, "root/slow", Stopped); !errors.Is(e.Reason, ErrKilled) {
		t.Errorf("forced child stopped with %v, want ErrKilled", e.Reason)
	}

	if err := sup.TerminateChild("quick"); err != nil {
		t.Fatal(err)
	}
	if e := events.wait(t, "root/quick", Stopped); !errors.Is(e.Reason, ErrShutdown) {
		t.Errorf("graceful child stopped with %v, want ErrShutdown", e.Reason)
	}
}

func TestBrutalKillCallsKillAtOnce(t *testing.T) {
	system := newSystem(t)
	rec := newRecorder()
	release := make(chan struct{})
	var kills counter
	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags(), Children: []ChildSpec{
		worker(rec, "w", workerOpts{shutdown: BrutalKill, block: release,
			kill: func(*actor.PID) { kills.inc(); close(release) }}),
	}})
	start := time.Now()
	if err := sup.TerminateChild("w"); err != nil {
		t.Fatal(err)
	}
	if kills.get() != 1 {
		t.Errorf("Kill called %d times, want 1", kills.get())
	}
	// The default worker timeout is 5s; brutal_kill must not wait for it.
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("brutal kill took %v", elapsed)
	}
}
