package policy

import (
	"errors"
	"testing"
	"time"
)

func TestBackoffDelayBounds(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 70 * time.Millisecond}
	for _, c := range []struct {
		attempt int
		want    time.Duration // the step d before jitter
	}{{0, 10 * time.Millisecond}, {1, 20 * time.Millisecond}, {2, 40 * time.Millisecond}, {3, 70 * time.Millisecond}, {60, 70 * time.Millisecond}} {
		if got := b.delay(c.attempt, func() float64 { return 0 }); got != c.want/2 {
			t.Errorf("delay(%d) with random 0 = %v, want %v", c.attempt, got, c.want/2)
		}
		if got := b.delay(c.attempt, func() float64 { return 1 }); got != c.want {
			t.Errorf("delay(%d) with random 1 = %v, want %v", c.attempt, got, c.want)
		}
	}
	if got := (Backoff{}).Delay(5); got != 0 {
		t.Errorf("zero Backoff: Delay(5) = %v, want 0", got)
	}
}

func TestFlagsValidate(t *testing.T) {
	if err := DefaultFlags().Validate(); err != nil {
		t.Fatalf("DefaultFlags().Validate() = %v", err)
	}
	err := Flags{Strategy: 7, Intensity: -1, AutoShutdown: 9, Backoff: Backoff{Min: time.Second, Max: time.Millisecond}}.Validate()
	var fes FieldErrors
	if !errors.As(err, &fes) {
		t.Fatalf("Validate() = %v, want FieldErrors", err)
	}
	var fields []string
	for _, fe := range fes {
		if fe.Supervisor != "" || fe.Child != "" {
			t.Errorf("%v: names a supervisor or child", fe)
		}
		fields = append(fields, fe.Field)
	}
	want := []string{"strategy", "intensity", "period", "auto_shutdown", "backoff.max"}
	if len(fields) != len(want) {
		t.Fatalf("fields %v, want %v", fields, want)
	}
	for i := range want {
		if fields[i] != want[i] {
			t.Fatalf("fields %v, want %v", fields, want)
		}
	}
}

func TestParseAndString(t *testing.T) {
	for _, name := range []string{"one_for_one", "one_for_all", "rest_for_one"} {
		s, err := ParseStrategy(name)
		if err != nil || s.String() != name {
			t.Errorf("ParseStrategy(%q) = %v, %v", name, s, err)
		}
	}
	_, err := ParseAutoShutdown("sometimes")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "auto_shutdown" {
		t.Errorf("ParseAutoShutdown(sometimes) = %v, want a *FieldError for auto_shutdown", err)
	}
	if got := (Event{Path: "root/w", Kind: Exited, Reason: errors.New("boom\nstack")}).String(); got != "root/w exited (boom)" {
		t.Errorf("Event.String() = %q", got)
	}
	if got := EventKind(42).String(); got != "EventKind(42)" {
		t.Errorf("EventKind(42).String() = %q", got)
	}
}
