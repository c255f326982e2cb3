package spec

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/troupe-dev/troupe/internal/schema"
)

// Pos is a position in a spec file. Line and Col are 1-based; the zero Pos means "unknown".
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats p as FILE:LINE:COL.
func (p Pos) String() string {
	file := p.File
	if file == "" {
		file = "<spec>"
	}
	return fmt.Sprintf("%s:%d:%d", file, max(p.Line, 1), max(p.Col, 1))
}

// PosError is one problem found in a spec, at a position.
type PosError struct {
	Pos Pos
	Msg string
	// Err is the underlying error, if the problem came from elsewhere (opening a file, a
	// builtin rejecting its options); nil for problems found in the spec's text.
	Err error
}

// Error formats e as FILE:LINE:COL: message.
func (e *PosError) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap returns the underlying error, if any.
func (e *PosError) Unwrap() error { return e.Err }

// SpecError lists every problem found in a spec, sorted by position.
type SpecError struct {
	Errors []*PosError
}

// Error formats every problem on its own line.
func (e *SpecError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, pe := range e.Errors {
		lines[i] = pe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, for errors.Is and errors.As.
func (e *SpecError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, pe := range e.Errors {
		errs[i] = pe
	}
	return errs
}

// errorList accumulates positioned errors while a spec is parsed.
type errorList struct {
	errs []*PosError
}

func (l *errorList) add(p Pos, format string, args ...any) {
	l.errs = append(l.errs, &PosError{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (l *errorList) wrap(p Pos, err error, format string, args ...any) {
	l.errs = append(l.errs, &PosError{Pos: p, Msg: fmt.Sprintf(format, args...), Err: err})
}

// err returns the accumulated errors as a *SpecError sorted by position, or nil.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := slices.Clone(l.errs)
	slices.SortStableFunc(errs, func(a, b *PosError) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
	// The same problem can be reached twice (an alias used in two places); report it once.
	errs = slices.CompactFunc(errs, func(a, b *PosError) bool { return a.Pos == b.Pos && a.Msg == b.Msg })
	return &SpecError{Errors: errs}
}

// specError makes the schema's field errors a *SpecError: each at its position in file, its
// message the key path and what is wrong.
func specError(file string, errs schema.Errors) error {
	var l errorList
	for _, e := range errs {
		msg := e.Msg
		if e.Path != "" {
			msg = e.Path + ": " + msg
		}
		l.wrap(Pos{File: file, Line: e.Line, Col: e.Col}, e, "%s", msg)
	}
	return l.err()
}
