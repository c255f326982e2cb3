package supervisor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// want is one expected *FieldError: where it is and a part of its Msg.
type want struct{ sup, child, field, msg string }

func fieldErrorsOf(t *testing.T, err error) FieldErrors {
	t.Helper()
	if err == nil {
		return nil
	}
	var fes FieldErrors
	if !errors.As(err, &fes) {
		t.Fatalf("error %q (%T) is not FieldErrors", err, err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe != fes[0] {
		t.Fatalf("errors.As(*FieldError) does not find the first of %v", fes)
	}
	return fes
}

func checkFieldErrors(t *testing.T, name string, err error, wants []want) {
	t.Helper()
	fes := fieldErrorsOf(t, err)
	if len(fes) != len(wants) {
		t.Errorf("%s: got %d errors, want %d: %v", name, len(fes), len(wants), err)
		return
	}
	for i, w := range wants {
		fe := fes[i]
		if fe.Supervisor != w.sup || fe.Child != w.child || fe.Field != w.field || !strings.Contains(fe.Msg, w.msg) {
			t.Errorf("%s: error %d = %+v, want %+v", name, i, *fe, w)
		}
		if !strings.Contains(err.Error(), fe.Field+": "+fe.Msg) {
			t.Errorf("%s: %q does not print %q", name, err, fe.Field+": "+fe.Msg)
		}
	}
}

func TestFlagsValidateFieldErrors(t *testing.T) {
	ok := DefaultFlags()
	with := func(f func(*Flags)) Flags { g := ok; f(&g); return g }
	cases := []struct {
		name  string
		flags Flags
		wants []want
	}{
		{"defaults", ok, nil},
		{"largest intensity", with(func(f *Flags) { f.Intensity = MaxIntensity }), nil},
		{"backoff max = min", with(func(f *Flags) { f.Backoff = Backoff{Min: time.Second, Max: time.Second} }), nil},
		{"unknown strategy", with(func(f *Flags) { f.Strategy = 7 }), []want{{"", "", "strategy", "unknown value 7 (want one of one_for_one, one_for_all, rest_for_one)"}}},
		{"negative strategy", with(func(f *Flags) { f.Strategy = -1 }), []want{{"", "", "strategy", "unknown value -1"}}},
		{"negative intensity", with(func(f *Flags) { f.Intensity = -1 }), []want{{"", "", "intensity", "must not be negative, got -1"}}},
		{"zero period", with(func(f *Flags) { f.Period = 0 }), []want{{"", "", "period", "must be positive, got 0s"}}},
		{"negative period", with(func(f *Flags) { f.Period = -time.Second }), []want{{"", "", "period", "must be positive, got -1s"}}},
		{"unknown auto_shutdown", with(func(f *Flags) { f.AutoShutdown = 9 }), []want{{"", "", "auto_shutdown", "unknown value 9 (want one of never, any_significant, all_significant)"}}},
		{"negative backoff min", with(func(f *Flags) { f.Backoff = Backoff{Min: -time.Second} }), []want{{"", "", "backoff.min", "must not be negative, got -1s"}}},
		{"negative backoff max", with(func(f *Flags) { f.Backoff = Backoff{Max: -time.Second} }), []want{{"", "", "backoff.max", "must not be negative, got -1s"}}},
		{"backoff max < min", with(func(f *Flags) { f.Backoff = Backoff{Min: 2 * time.Second, Max: time.Second} }), []want{{"", "", "backoff.max", "must not be below backoff.min (2s), got 1s"}}},
		{"all at once", Flags{Strategy: 5, Intensity: -3, AutoShutdown: -1, Backoff: Backoff{Min: -1, Max: -2}}, []want{
			{"", "", "strategy", "unknown value 5"},
			{"", "", "intensity", "must not be negative"},
			{"", "", "period", "must be positive"},
			{"", "", "auto_shutdown", "unknown value -1"},
			{"", "", "backoff.min", "must not be negative"},
			{"", "", "backoff.max", "must not be negative"},
		}},
	}
	for _, tc := range cases {
		checkFieldErrors(t, tc.name, tc.flags.Validate(), tc.wants)
	}
}

// An intensity above MaxIntensity is too large, not negative (the message
// used to be about negative values whatever the range broken). Only where
// int has 64 bits can such a value be written.
func TestIntensityTooLarge(t *testing.T) {
	big := int64(MaxIntensity) + 1
	if int64(int(big)) != big {
		t.Skip("int has 32 bits")
	}
	f := DefaultFlags()
	f.Intensity = int(big)
	err := f.Validate()
	checkFieldErrors(t, "too large", err, []want{{"", "", "intensity", "must be at most 2147483647, got 2147483648"}})
	if strings.Contains(err.Error(), "negative") {
		t.Errorf("a too large intensity is reported as negative: %v", err)
	}
}

func TestChildSpecValidateFieldErrors(t *testing.T) {
	start := func() (*actor.Props, error) { return nil, nil }
	good := ChildSpec{Name: "w", Start: start}
	with := func(f func(*ChildSpec)) ChildSpec { c := good; f(&c); return c }
	cases := []struct {
		name  string
		child ChildSpec
		wants []want
	}{
		{"good", good, nil},
		{"brutal_kill", with(func(c *ChildSpec) { c.Shutdown = BrutalKill }), nil},
		{"infinity", with(func(c *ChildSpec) { c.Shutdown = Infinity }), nil},
		{"significant transient", with(func(c *ChildSpec) { c.Significant, c.Restart = true, Transient }), nil},
		{"significant temporary", with(func(c *ChildSpec) { c.Significant, c.Restart = true, Temporary }), nil},
		{"empty name", with(func(c *ChildSpec) { c.Name = "" }), []want{{"", "", "name", "must not be empty"}}},
		{"name with /", with(func(c *ChildSpec) { c.Name = "a/b" }), []want{{"", "a/b", "name", `must not contain '/', got "a/b"`}}},
		{"no start", with(func(c *ChildSpec) { c.Start = nil }), []want{{"", "w", "start", "no start function"}}},
		{"unknown restart", with(func(c *ChildSpec) { c.Restart = 3 }), []want{{"", "w", "restart", "unknown value 3 (want one of permanent, transient, temporary)"}}},
		{"invalid shutdown", with(func(c *ChildSpec) { c.Shutdown = -3 }), []want{{"", "w", "shutdown", "invalid value -3"}}},
		{"unknown type", with(func(c *ChildSpec) { c.Type = 2 }), []want{{"", "w", "type", "unknown value 2 (want one of worker, supervisor)"}}},
		{"significant permanent", with(func(c *ChildSpec) { c.Significant = true }), []want{{"", "w", "significant", "a permanent child cannot be significant"}}},
		{"nested spec", Spec{Name: "inner", Flags: Flags{Intensity: -1, Period: time.Second}, Children: []ChildSpec{{Name: "x"}}}.Child(Permanent), []want{
			{"inner", "", "intensity", "must not be negative"},
			{"inner", "x", "start", "no start function"},
		}},
	}
	for _, tc := range cases {
		checkFieldErrors(t, tc.name, tc.child.Validate(), tc.wants)
	}
}

func TestSpecValidateFieldErrors(t *testing.T) {
	start := func() (*actor.Props, error) { return nil, nil }
	ok := DefaultFlags()
	inner := Spec{Name: "inner", Flags: Flags{Period: time.Second, Backoff: Backoff{Min: 2, Max: 1}}, Children: []ChildSpec{
		{Name: "w", Start: start, Shutdown: -7},
	}}
	cases := []struct {
		name  string
		spec  Spec
		wants []want
	}{
		{"good", Spec{Name: "s", Flags: ok, Children: []ChildSpec{{Name: "a", Start: start}, Spec{Name: "b", Flags: ok, Children: []ChildSpec{{Name: "a", Start: start}}}.Child(Transient)}}, nil},
		{"no name", Spec{Flags: ok}, []want{{"", "", "name", "must not be empty"}}},
		{"flags", Spec{Name: "s", Flags: Flags{Intensity: -1}}, []want{
			{"s", "", "intensity", "must not be negative"},
			{"s", "", "period", "must be positive"},
		}},
		{"duplicate child", Spec{Name: "s", Flags: ok, Children: []ChildSpec{{Name: "a", Start: start}, {Name: "b", Start: start}, {Name: "a", Start: start}}}, []want{
			{"s", "a", "name", "duplicate: child #1 has the same name"},
		}},
		{"unnamed child", Spec{Name: "s", Flags: ok, Children: []ChildSpec{{Name: "a", Start: start}, {Start: start}}}, []want{
			{"s", "#2", "name", "must not be empty"},
		}},
		{"children and nested", Spec{Name: "root", Flags: ok, Children: []ChildSpec{{Name: "a"}, inner.Child(Permanent)}}, []want{
			{"root", "a", "start", "no start function"},
			{"root/inner", "", "backoff.max", "must not be below backoff.min"},
			{"root/inner", "w", "shutdown", "invalid value -7"},
		}},
	}
	for _, tc := range cases {
		checkFieldErrors(t, tc.name, tc.spec.Validate(), tc.wants)
	}
	// Printed, the errors keep saying which supervisor and child they are
	// about.
	err := Spec{Name: "root", Flags: ok, Children: []ChildSpec{{Name: "a"}, inner.Child(Permanent)}}.Validate()
	const text = `supervisor: supervisor "root": child "a": start: no start function; ` +
		`supervisor "root/inner": backoff.max: must not be below backoff.min (2ns), got 1ns; ` +
		`supervisor "root/inner": child "w": shutdown: invalid value -7 (want a positive duration, BrutalKill or Infinity)`
	if err.Error() != text {
		t.Errorf("Error() =\n%s\nwant\n%s", err, text)
	}
}

// Start and StartChild report the rules broken by what they were given.
func TestStartReportsFieldErrors(t *testing.T) {
	system := newSystem(t)
	_, err := Start(system, Spec{Name: "bad", Flags: Flags{Intensity: -1, Period: time.Second}})
	checkFieldErrors(t, "Start", err, []want{{"bad", "", "intensity", "must not be negative"}})

	sup := mustStart(t, system, Spec{Name: "root", Flags: DefaultFlags()})
	err = sup.StartChild(ChildSpec{Name: "x", Restart: Permanent, Significant: true})
	checkFieldErrors(t, "StartChild", err, []want{
		{"", "x", "start", "no start function"},
		{"", "x", "significant", "cannot be significant"},
	})
	if names := childNames(t, sup); len(names) != 0 {
		t.Errorf("children after a refused StartChild: %v", names)
	}
}

// The Parse functions' errors print as they always have and unwrap to a
// *FieldError whose Field and Msg read the same.
func TestParseErrorsAreFieldErrors(t *testing.T) {
	_, err1 := ParseStrategy("simple_one_for_one")
	_, err2 := ParseRestartType("sometimes")
	_, err3 := ParseAutoShutdown("maybe")
	for _, tc := range []struct {
		err   error
		field string
		text  string
	}{
		{err1, "strategy", `supervisor: unknown strategy "simple_one_for_one" (want one of one_for_one, one_for_all, rest_for_one)`},
		{err2, "restart", `supervisor: unknown restart type "sometimes" (want one of permanent, transient, temporary)`},
		{err3, "auto_shutdown", `supervisor: unknown auto_shutdown "maybe" (want one of never, any_significant, all_significant)`},
	} {
		if tc.err == nil || tc.err.Error() != tc.text {
			t.Errorf("error = %v, want %s", tc.err, tc.text)
			continue
		}
		var fe *FieldError
		if !errors.As(tc.err, &fe) {
			t.Errorf("%v does not unwrap to a *FieldError", tc.err)
			continue
		}
		if fe.Field != tc.field || "supervisor: "+fe.Msg != tc.text {
			t.Errorf("%v: %+v", tc.err, *fe)
		}
	}
}
