package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem of a document: the key path it is about (stages[1].limits.rss; ""
// for the document itself), where it was written (1-based; 0 when unknown) and what is wrong.
type FieldError struct {
	Path      string
	Line, Col int
	Msg       string
}

// Errorf makes a FieldError about the field at path. It is how a Check method reports a problem:
// the path is relative to the checked struct, and the decoder fills in the full path and the
// position.
func Errorf(path, format string, args ...any) FieldError {
	return FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Error formats e as LINE:COL: path: message (the path is left out when empty).
func (e FieldError) Error() string { return e.Format("") }

// Format formats e as FILE:LINE:COL: path: message; an empty file leaves out FILE: too.
func (e FieldError) Format(file string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		b.WriteByte(':')
	}
	fmt.Fprintf(&b, "%d:%d: ", max(e.Line, 1), max(e.Col, 1))
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a document. Decode returns them sorted by position, each
// once; nil means none.
type Errors []FieldError

// Sort orders the errors by position (then path and message, so that the order is stable) and
// drops repeats: a problem under an alias used twice is reported once.
func (es Errors) Sort() Errors {
	if len(es) == 0 {
		return nil
	}
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b FieldError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return slices.Compact(out)
}

// Format formats every error on its own line as FILE:LINE:COL: path: message.
func (es Errors) Format(file string) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Format(file)
	}
	return strings.Join(lines, "\n")
}

// Error formats every error on its own line, without a file name.
func (es Errors) Error() string { return es.Format("") }

// Err returns es as an error, or nil when there are none (a nil Errors in an error interface
// would not be nil).
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Unwrap returns the individual errors, for errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
