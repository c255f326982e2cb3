package supervisor

import (
	"errors"
	"fmt"

	"github.com/troupe-dev/troupe/supervisor/policy"
)

// FieldError is one broken range or consistency rule of a specification:
// which field, and what is wrong with it (see [policy.FieldError] for its
// fields). [Flags.Validate], [ChildSpec.Validate] and [Spec.Validate]
// return their findings as [FieldErrors] (all of them at once), and the
// Parse functions' errors unwrap to one, so that a caller that reads
// specifications from a file can use errors.As to put each one at the
// position of the field it names, instead of taking error strings apart.
type FieldError = policy.FieldError

// FieldErrors are all the broken rules a validation found, in the order of
// the fields. A validation that finds any returns them as FieldErrors
// (never an empty one); errors.As finds both the FieldErrors and, through
// Unwrap, its first *FieldError.
type FieldErrors = policy.FieldErrors

// fieldErrors collects FieldErrors with a common context.
type fieldErrors struct {
	errs       FieldErrors
	supervisor string
	child      string
}

func (f *fieldErrors) add(field, format string, args ...any) {
	f.errs = append(f.errs, &FieldError{Supervisor: f.supervisor, Child: f.child, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addFlags adds the broken rules of flags (Flags.Validate's), in the
// current context.
func (f *fieldErrors) addFlags(flags Flags) {
	var fes FieldErrors
	if !errors.As(flags.Validate(), &fes) {
		return
	}
	for _, e := range fes {
		e.Supervisor, e.Child = f.supervisor, f.child
		f.errs = append(f.errs, e)
	}
}

// err returns the collected errors, or nil.
func (f *fieldErrors) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return f.errs
}
