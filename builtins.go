package troupe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/troupe-dev/troupe/actors"
)

// Builtin is an in-process stage that specs name with `builtin:`. Exactly one of New and Reduce
// is set. Both receive the stage's options (nil when the spec gives none) and must reject
// options they do not know, naming them. They are called when a spec is parsed, to check the
// options, and again when it is built, so they must be cheap and free of side effects; the
// function they return is called concurrently by the stage's workers.
type Builtin struct {
	// New makes a Func stage.
	New func(opts map[string]any) (actors.Func, error)
	// Reduce makes a reduce stage, which runs a single worker.
	Reduce func(opts map[string]any) (actors.ReduceFunc, error)
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Builtin{}
)

// Register makes a builtin available to specs under name. It panics if name is empty or already
// registered, or if b does not set exactly one of New and Reduce. Call it from an init function,
// before specs are parsed.
func Register(name string, b Builtin) {
	if name == "" {
		panic("troupe: Register with an empty name")
	}
	if (b.New == nil) == (b.Reduce == nil) {
		panic("troupe: Register " + name + ": exactly one of New and Reduce must be set")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("troupe: Register called twice for builtin " + name)
	}
	registry[name] = b
}

// Builtins returns the names of the registered builtins, sorted.
func Builtins() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}

func lookupBuiltin(name string) (Builtin, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	b, ok := registry[name]
	return b, ok
}

func init() {
	Register("identity", Builtin{New: noOptions(func(ctx context.Context, rec *Record) ([]*Record, error) {
		return []*Record{rec}, nil
	})})
	// A Func never changes its input (the runtime may send it again): these return a new record.
	Register("upper", Builtin{New: noOptions(func(ctx context.Context, rec *Record) ([]*Record, error) {
		return []*Record{withPayload(rec, bytes.ToUpper(rec.Payload))}, nil
	})})
	Register("lower", Builtin{New: noOptions(func(ctx context.Context, rec *Record) ([]*Record, error) {
		return []*Record{withPayload(rec, bytes.ToLower(rec.Payload))}, nil
	})})
	Register("split", Builtin{New: newSplit})
	Register("grep", Builtin{New: newGrep})
	Register("format", Builtin{New: newFormat})
	Register("sleep", Builtin{New: newSleep})
	Register("count", Builtin{Reduce: func(opts map[string]any) (actors.ReduceFunc, error) {
		if err := checkOptions(opts); err != nil {
			return nil, err
		}
		return reduceCount, nil
	}})
	Register("sum", Builtin{Reduce: func(opts map[string]any) (actors.ReduceFunc, error) {
		if err := checkOptions(opts); err != nil {
			return nil, err
		}
		return reduceSum, nil
	}})
}

// noOptions makes the constructor of a builtin that takes no options.
func noOptions(f actors.Func) func(map[string]any) (actors.Func, error) {
	return func(opts map[string]any) (actors.Func, error) {
		if err := checkOptions(opts); err != nil {
			return nil, err
		}
		return f, nil
	}
}

// checkOptions rejects option keys not in known.
func checkOptions(opts map[string]any, known ...string) error {
	var unknown []string
	for k := range opts {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	quoted := make([]string, len(unknown))
	for i, k := range unknown {
		quoted[i] = strconv.Quote(k)
	}
	msg := "unknown option"
	if len(unknown) > 1 {
		msg += "s"
	}
	msg += " " + strings.Join(quoted, ", ")
	switch {
	case len(known) == 0:
		msg += " (takes no options)"
	case len(unknown) == 1:
		if s, ok := closest(unknown[0], known); ok {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
			break
		}
		fallthrough
	default:
		msg += " (known: " + strings.Join(known, ", ") + ")"
	}
	return errors.New(msg)
}

func optString(opts map[string]any, key, def string) (string, error) {
	v, ok := opts[key]
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("option %s: expected a string, got %T", key, v)
	}
	return s, nil
}

func optBool(opts map[string]any, key string) (bool, error) {
	v, ok := opts[key]
	if !ok {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("option %s: expected true or false, got %T", key, v)
	}
	return b, nil
}

// newSplit: one output record per field of the payload. Options: sep (the separator; default
// any run of white space), key_from ("input", the default, keeps the input's key; "field" makes
// each field its output's key). Empty fields are skipped.
func newSplit(opts map[string]any) (actors.Func, error) {
	if err := checkOptions(opts, "sep", "key_from"); err != nil {
		return nil, err
	}
	sep, err := optString(opts, "sep", "")
	if err != nil {
		return nil, err
	}
	if _, given := opts["sep"]; given && sep == "" {
		return nil, errors.New("option sep: must not be empty (leave it out to split at white space)")
	}
	keyFrom, err := optString(opts, "key_from", "input")
	if err != nil {
		return nil, err
	}
	if keyFrom != "input" && keyFrom != "field" {
		return nil, fmt.Errorf("option key_from: want input or field, got %q", keyFrom)
	}
	bsep := []byte(sep)
	return func(ctx context.Context, rec *Record) ([]*Record, error) {
		var fields [][]byte
		if len(bsep) == 0 {
			fields = bytes.Fields(rec.Payload)
		} else {
			fields = bytes.Split(rec.Payload, bsep)
		}
		outs := make([]*Record, 0, len(fields))
		for _, f := range fields {
			if len(f) == 0 {
				continue
			}
			out := &Record{Key: rec.Key, Payload: bytes.Clone(f), Meta: maps.Clone(rec.Meta)}
			if keyFrom == "field" {
				out.Key = string(f)
			}
			outs = append(outs, out)
		}
		return outs, nil
	}, nil
}

// newGrep: a filter that keeps records whose payload matches pattern (a Go regexp), or those
// that do not with invert: true.
func newGrep(opts map[string]any) (actors.Func, error) {
	if err := checkOptions(opts, "pattern", "invert"); err != nil {
		return nil, err
	}
	pat, err := optString(opts, "pattern", "")
	if err != nil {
		return nil, err
	}
	if _, given := opts["pattern"]; !given {
		return nil, errors.New("option pattern: required")
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, fmt.Errorf("option pattern: %w", err)
	}
	invert, err := optBool(opts, "invert")
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, rec *Record) ([]*Record, error) {
		if re.Match(rec.Payload) != invert {
			return []*Record{rec}, nil
		}
		return nil, nil
	}, nil
}

// newFormat: rewrites the payload from template (default "{key}\t{payload}"), in which {key},
// {payload} and {meta.NAME} are replaced by the record's key, payload and metadata, and {{ and }}
// stand for literal braces.
func newFormat(opts map[string]any) (actors.Func, error) {
	if err := checkOptions(opts, "template"); err != nil {
		return nil, err
	}
	tmpl, err := optString(opts, "template", "{key}\t{payload}")
	if err != nil {
		return nil, err
	}
	parts, err := parseTemplate(tmpl)
	if err != nil {
		return nil, fmt.Errorf("option template: %w", err)
	}
	return func(ctx context.Context, rec *Record) ([]*Record, error) {
		var b []byte
		for _, p := range parts {
			switch {
			case p.field == "":
				b = append(b, p.lit...)
			case p.field == "key":
				b = append(b, rec.Key...)
			case p.field == "payload":
				b = append(b, rec.Payload...)
			default:
				b = append(b, rec.Meta[strings.TrimPrefix(p.field, "meta.")]...)
			}
		}
		return []*Record{withPayload(rec, b)}, nil
	}, nil
}

// withPayload is a new record with rec's key and metadata (shared: no stage changes them in
// place) and payload p.
func withPayload(rec *Record, p []byte) *Record {
	return &Record{Key: rec.Key, Payload: p, Meta: rec.Meta}
}

type templatePart struct {
	lit   string
	field string // "", "key", "payload" or "meta.NAME"
}

func parseTemplate(s string) ([]templatePart, error) {
	var parts []templatePart
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed { at byte %d", i)
			}
			field := s[i+1 : i+end]
			if field != "key" && field != "payload" && !(strings.HasPrefix(field, "meta.") && len(field) > 5) {
				return nil, fmt.Errorf("unknown placeholder {%s} (want {key}, {payload} or {meta.NAME})", field)
			}
			if lit.Len() > 0 {
				parts = append(parts, templatePart{lit: lit.String()})
				lit.Reset()
			}
			parts = append(parts, templatePart{field: field})
			i += end
		case c == '}':
			return nil, fmt.Errorf("unmatched } at byte %d (write }} for a literal brace)", i)
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, templatePart{lit: lit.String()})
	}
	return parts, nil
}

// newSleep: passes records through after waiting duration (a Go duration string) each, to
// simulate work or to throttle.
func newSleep(opts map[string]any) (actors.Func, error) {
	if err := checkOptions(opts, "duration"); err != nil {
		return nil, err
	}
	s, err := optString(opts, "duration", "")
	if err != nil {
		return nil, err
	}
	if _, given := opts["duration"]; !given {
		return nil, errors.New("option duration: required")
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return nil, fmt.Errorf("option duration: bad duration %q", s)
	}
	return func(ctx context.Context, rec *Record) ([]*Record, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return []*Record{rec}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil
}

// reduceCount counts records per key.
func reduceCount(key string, acc []byte, rec *Record) ([]byte, error) {
	var n uint64
	if acc != nil {
		var err error
		if n, err = strconv.ParseUint(string(acc), 10, 64); err != nil {
			return nil, fmt.Errorf("count: corrupt aggregate %q", acc)
		}
	}
	return strconv.AppendUint(nil, n+1, 10), nil
}

// reduceSum adds up decimal payloads per key: integers while every value is an integer (and
// the sum fits in 64 bits), floating point otherwise.
func reduceSum(key string, acc []byte, rec *Record) ([]byte, error) {
	text := strings.TrimSpace(string(rec.Payload))
	if acc == nil {
		acc = []byte("0")
	}
	ai, aerr := strconv.ParseInt(string(acc), 10, 64)
	vi, verr := strconv.ParseInt(text, 10, 64)
	if aerr == nil && verr == nil {
		if s := ai + vi; (vi >= 0) == (s >= ai) {
			return strconv.AppendInt(nil, s, 10), nil
		}
	}
	af, err := strconv.ParseFloat(string(acc), 64)
	if err != nil {
		return nil, fmt.Errorf("sum: corrupt aggregate %q", acc)
	}
	vf, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(vf) || math.IsInf(vf, 0) {
		return nil, fmt.Errorf("sum: payload %q is not a number", truncate(text, 40))
	}
	return strconv.AppendFloat(nil, af+vf, 'g', -1, 64), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
