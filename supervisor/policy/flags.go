package policy

import (
	"math/rand/v2"
	"strings"
	"time"
)

// Strategy is a supervisor's restart strategy: which children are restarted
// when one of them exits and has to be restarted.
type Strategy int

const (
	// OneForOne restarts only the child that exited.
	OneForOne Strategy = iota
	// OneForAll stops all other children (in reverse declaration order) and
	// then restarts all of them (in declaration order), also those that
	// were not running (their specification is kept). If a start fails,
	// the children restarted so far are stopped again (reverse order) and
	// all of them are restarted again.
	OneForAll
	// RestForOne stops the children declared after the one that exited (in
	// reverse order) and restarts it and them (in declaration order), also
	// those that were not running. If a start fails, that child and the
	// ones after it are started again; the ones before it keep running.
	RestForOne
)

var strategyNames = []string{"one_for_one", "one_for_all", "rest_for_one"}

// String returns the OTP name of s, e.g. "one_for_one".
func (s Strategy) String() string { return enumName(strategyNames, int(s), "Strategy") }

// ParseStrategy parses an OTP strategy name: "one_for_one", "one_for_all"
// or "rest_for_one". Another name is an error that errors.As
// turns into a [*FieldError] for "strategy".
func ParseStrategy(s string) (Strategy, error) {
	i, err := parseEnum(strategyNames, s, "strategy", "strategy")
	return Strategy(i), err
}

// AutoShutdown decides whether a supervisor ends by itself when
// significant children end (and are not restarted).
type AutoShutdown int

const (
	// Never disables automatic shutdown (the default).
	Never AutoShutdown = iota
	// AnySignificant shuts the supervisor down when any significant child
	// ends.
	AnySignificant
	// AllSignificant shuts the supervisor down when all significant
	// children have ended.
	AllSignificant
)

var autoShutdownNames = []string{"never", "any_significant", "all_significant"}

// String returns the OTP name of a, e.g. "any_significant".
func (a AutoShutdown) String() string { return enumName(autoShutdownNames, int(a), "AutoShutdown") }

// ParseAutoShutdown parses "never", "any_significant" or "all_significant".
// Another name is an error that errors.As turns into a [*FieldError] for
// "auto_shutdown".
func ParseAutoShutdown(s string) (AutoShutdown, error) {
	i, err := parseEnum(autoShutdownNames, s, "auto_shutdown", "auto_shutdown")
	return AutoShutdown(i), err
}

// Backoff delays repeated restarts. As in OTP, the first restart within
// the supervisor's intensity period is immediate; the ones after it, while
// that first one is still in the period, wait Min, 2*Min, 4*Min, ...
// capped at Max, with "equal jitter" (a uniformly random delay between
// half of that value and the value), so that restarts of many supervisors
// do not synchronise. A zero Min restarts at once every time.
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the backoff step with the given number: random in [d/2, d]
// where d = min(Max, Min<<attempt); it is 0 if Min is zero. A supervisor
// waits Delay(k-1) before the restart that has k restarts before it within
// the intensity period, and nothing before the first one (k = 0).
func (b Backoff) Delay(attempt int) time.Duration {
	return b.delay(attempt, rand.Float64)
}

func (b Backoff) delay(attempt int, random func() float64) time.Duration {
	if b.Min <= 0 {
		return 0
	}
	max := b.Max
	if max < b.Min {
		max = b.Min
	}
	d := b.Min
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + time.Duration(random()*float64(d-half))
}

// Flags are a supervisor's OTP "supervisor flags".
type Flags struct {
	// Strategy is the restart strategy.
	Strategy Strategy
	// Intensity is the maximum number of restarts allowed within Period,
	// counted per supervisor across all children. One more and the
	// supervisor gives up.
	Intensity int
	// Period is the sliding window for Intensity. It must be positive.
	Period time.Duration
	// AutoShutdown makes the supervisor end when significant children end.
	AutoShutdown AutoShutdown
	// Backoff delays repeated restarts (the first one in Period is
	// immediate); the zero value restarts at once every time.
	Backoff Backoff
}

// DefaultFlags returns OTP's defaults: one_for_one, intensity 1, period 5s.
func DefaultFlags() Flags {
	return Flags{Strategy: OneForOne, Intensity: 1, Period: 5 * time.Second}
}

// MaxIntensity is the largest Flags.Intensity: the largest int on every
// platform. (The supervisor keeps the time of each restart within Period,
// so an intensity near it is "never give up" in practice.)
const MaxIntensity = 1<<31 - 1

// Validate reports whether f is usable. It returns nil or [FieldErrors],
// one [*FieldError] for each broken rule: a known strategy and
// auto_shutdown, an intensity between 0 and MaxIntensity, a positive
// period, a backoff whose min is not negative and whose max is not below
// its min. Its errors name no Supervisor and no Child.
func (f Flags) Validate() error {
	var fe fieldErrors
	if f.Strategy < OneForOne || f.Strategy > RestForOne {
		fe.add("strategy", "unknown value %d (want one of %s)", int(f.Strategy), strings.Join(strategyNames, ", "))
	}
	switch {
	case f.Intensity < 0:
		fe.add("intensity", "must not be negative, got %d", f.Intensity)
	case f.Intensity > MaxIntensity:
		fe.add("intensity", "must be at most %d, got %d", MaxIntensity, f.Intensity)
	}
	if f.Period <= 0 {
		fe.add("period", "must be positive, got %v", f.Period)
	}
	if f.AutoShutdown < Never || f.AutoShutdown > AllSignificant {
		fe.add("auto_shutdown", "unknown value %d (want one of %s)", int(f.AutoShutdown), strings.Join(autoShutdownNames, ", "))
	}
	if f.Backoff.Min < 0 {
		fe.add("backoff.min", "must not be negative, got %v", f.Backoff.Min)
	}
	switch {
	case f.Backoff.Max < 0:
		fe.add("backoff.max", "must not be negative, got %v", f.Backoff.Max)
	case f.Backoff.Max < f.Backoff.Min:
		fe.add("backoff.max", "must not be below backoff.min (%v), got %v", f.Backoff.Min, f.Backoff.Max)
	}
	return fe.err()
}
