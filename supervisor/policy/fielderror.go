package policy

import (
	"fmt"
	"strings"
)

// FieldError is one broken range or consistency rule of a specification:
// which field, and what is wrong with it. [Flags.Validate] (and package
// supervisor's ChildSpec.Validate and Spec.Validate) return their findings
// as [FieldErrors] (all of them at once), and the Parse functions' errors
// unwrap to one, so that a caller that reads specifications from a file
// can use errors.As to put each one at the position of the field it names,
// instead of taking error strings apart.
type FieldError struct {
	// Supervisor is the path of specification names from the validated
	// Spec down to the one at fault, e.g. "root" or "root/convert" (a
	// nested Spec from Spec.Child); empty for Flags.Validate,
	// ChildSpec.Validate and the Parse functions.
	Supervisor string
	// Child is the name of the child specification at fault, or "#N" (N
	// its position, from 1) if it has no name; empty for the supervisor's
	// own fields.
	Child string
	// Field names the field in the YAML-ish spelling of the OTP names:
	// for Flags "strategy", "intensity", "period", "auto_shutdown",
	// "backoff.min" and "backoff.max"; for a Spec "name"; for a ChildSpec
	// "name", "start", "restart", "shutdown", "type" and "significant".
	Field string
	// Msg says what is wrong, without the field's name, e.g. "must not be
	// negative, got -1".
	Msg string
}

// Error returns e.g. `supervisor: intensity: must not be negative, got -1`
// or `supervisor: supervisor "root": child "w": shutdown: ...`.
func (e *FieldError) Error() string { return "supervisor: " + e.text() }

func (e *FieldError) text() string {
	var b strings.Builder
	if e.Supervisor != "" {
		fmt.Fprintf(&b, "supervisor %q: ", e.Supervisor)
	}
	if e.Child != "" {
		fmt.Fprintf(&b, "child %q: ", e.Child)
	}
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// FieldErrors are all the broken rules a validation found, in the order of
// the fields. A validation that finds any returns them as FieldErrors
// (never an empty one); errors.As finds both the FieldErrors and, through
// Unwrap, its first *FieldError.
type FieldErrors []*FieldError

// Error returns the errors on one line, separated by "; ", e.g.
// `supervisor: intensity: must not be negative, got -1; period: must be
// positive, got 0s`.
func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.text()
	}
	return "supervisor: " + strings.Join(parts, "; ")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (es FieldErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// fieldErrors collects FieldErrors.
type fieldErrors struct{ errs FieldErrors }

func (f *fieldErrors) add(field, format string, args ...any) {
	f.errs = append(f.errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// err returns the collected errors, or nil.
func (f *fieldErrors) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return f.errs
}

func enumName(names []string, i int, typ string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", typ, i)
}

// parseEnum parses one of names; what names the kind of value in the
// message. An unknown value is a *FieldError for field (see parseError).
func parseEnum(names []string, s, what, field string) (int, error) {
	for i, n := range names {
		if n == s {
			return i, nil
		}
	}
	return 0, &parseError{&FieldError{Field: field, Msg: fmt.Sprintf("unknown %s %q (want one of %s)", what, s, strings.Join(names, ", "))}}
}

// parseError is a *FieldError that prints as the Parse functions' errors
// always have, without the field's name (the message names it already):
// `supervisor: unknown strategy "x" (want one of ...)`.
type parseError struct{ fe *FieldError }

func (e *parseError) Error() string { return "supervisor: " + e.fe.Msg }

// Unwrap returns the *FieldError, for errors.As.
func (e *parseError) Unwrap() error { return e.fe }
