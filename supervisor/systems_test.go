package supervisor

import (
	"errors"
	"testing"
)

// Two actor systems in one process may use the same supervisor names (two
// pipelines both called "pipeline"): what one system's supervisors do must
// not show through handles of the other's. The package's state used to
// live in process-global maps keyed by PID id, so stopping a tree in one
// system made Ref to the same path in the other report a stopped
// supervisor.
func TestTwoSystemsWithTheSameNames(t *testing.T) {
	sys1, sys2 := newSystem(t), newSystem(t)
	rec1, rec2 := newRecorder(), newRecorder()
	spec := func(rec *recorder) Spec {
		inner := Spec{Name: "inner", Flags: flags(OneForOne, 3), Children: []ChildSpec{worker(rec, "w", workerOpts{})}}
		return Spec{Name: "root", Flags: flags(OneForOne, 3), Children: []ChildSpec{inner.Child(Permanent)}}
	}
	sup1 := mustStart(t, sys1, spec(rec1))
	sup2 := mustStart(t, sys2, spec(rec2))

	inner1, ok := childInfo(t, sup1, "inner")
	if !ok || inner1.PID == nil {
		t.Fatalf("system 1 has no running inner supervisor: %+v", inner1)
	}
	early := Ref(sys1, inner1.PID)
	if _, err := early.WhichChildren(); err != nil {
		t.Fatalf("Ref in system 1 while both run: %v", err)
	}

	// Stop system 2's tree (same names) and let it end completely.
	if err := sup2.Stop(); err != nil {
		t.Fatal(err)
	}

	select {
	case <-early.Done():
		t.Fatal("a handle to system 1's inner supervisor is done after system 2's tree stopped")
	default:
	}
	late := Ref(sys1, inner1.PID)
	select {
	case <-late.Done():
		t.Fatal("Ref to system 1's running inner supervisor is done after system 2's tree stopped")
	default:
	}
	infos, err := late.WhichChildren()
	if err != nil || len(infos) != 1 || infos[0].State != ChildRunning {
		t.Fatalf("system 1's inner supervisor: %+v, %v", infos, err)
	}
	// Exit in one system still reaches its own supervisor: the worker of
	// system 1 exits abnormally and is restarted there.
	n := rec1.len()
	send(sys1, "root/inner/w", exitMsg{reason: errBoom})
	rec1.waitFor(t, n, "start:w")
	if rec2.len() != 2 { // start:w, stop:w of system 2's own run
		t.Errorf("system 2's recorder changed: %v", rec2.since(0))
	}

	if err := sup1.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := late.WhichChildren(); !errors.Is(err, ErrSupervisorStopped) {
		t.Errorf("WhichChildren after system 1's tree stopped = %v", err)
	}
	waitDone(t, late)
}
