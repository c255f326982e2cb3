package troupe

import (
	"context"
	"strings"
	"testing"
	"time"
)

// apply runs the builtin name with opts on one record.
func apply(t *testing.T, name string, opts map[string]any, key, payload string) []*Record {
	t.Helper()
	b, ok := lookupBuiltin(name)
	if !ok || b.New == nil {
		t.Fatalf("no Func builtin %q", name)
	}
	f, err := b.New(opts)
	if err != nil {
		t.Fatalf("%s(%v): %v", name, opts, err)
	}
	outs, err := f(context.Background(), &Record{Key: key, Payload: []byte(payload), Meta: map[string]string{"m": "v"}})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return outs
}

func render(recs []*Record) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, r.Key+"="+string(r.Payload))
	}
	return strings.Join(parts, " ")
}

func TestFuncBuiltins(t *testing.T) {
	tests := []struct {
		name    string
		opts    map[string]any
		payload string
		want    string
	}{
		{"identity", nil, "Hello", "k=Hello"},
		{"upper", nil, "Héllo", "k=HÉLLO"},
		{"lower", nil, "HÉLLO", "k=héllo"},
		{"split", nil, "  a b\tc\n", "k=a k=b k=c"},
		{"split", map[string]any{"sep": ",", "key_from": "field"}, "x,,y,", "x=x y=y"},
		{"split", map[string]any{"key_from": "input"}, "", ""},
		{"grep", map[string]any{"pattern": "^a"}, "abc", "k=abc"},
		{"grep", map[string]any{"pattern": "^a"}, "bca", ""},
		{"grep", map[string]any{"pattern": "^a", "invert": true}, "bca", "k=bca"},
		{"format", nil, "1", "k=k\t1"},
		{"format", map[string]any{"template": "{{{key}}}:{payload}/{meta.m}{meta.none}"}, "p", "k={k}:p/v"},
		{"sleep", map[string]any{"duration": "1ms"}, "p", "k=p"},
	}
	for _, tt := range tests {
		if got := render(apply(t, tt.name, tt.opts, "k", tt.payload)); got != tt.want {
			t.Errorf("%s %v on %q = %q, want %q", tt.name, tt.opts, tt.payload, got, tt.want)
		}
		// The runtime may send a record again (after a restart): a builtin must leave its input
		// as it was, so that a second call gives the same outputs. format used to rewrite its
		// input's payload, and a resent record came out as "2\t2\tb".
		b, _ := lookupBuiltin(tt.name)
		f, _ := b.New(tt.opts)
		in := &Record{Key: "k", Payload: []byte(tt.payload), Meta: map[string]string{"m": "v"}}
		first, _ := f(context.Background(), in)
		once := render(first)
		second, _ := f(context.Background(), in)
		if in.Key != "k" || string(in.Payload) != tt.payload || len(in.Meta) != 1 || in.Meta["m"] != "v" {
			t.Errorf("%s %v changed its input: %+v", tt.name, tt.opts, in)
		}
		if twice := render(second); twice != once {
			t.Errorf("%s %v on the same record twice: %q then %q", tt.name, tt.opts, once, twice)
		}
	}
}

func TestSplitCopiesMeta(t *testing.T) {
	outs := apply(t, "split", nil, "k", "a b")
	outs[0].Meta["m"] = "changed"
	if outs[1].Meta["m"] != "v" {
		t.Error("split outputs share their metadata map")
	}
}

func TestSleepHonoursContext(t *testing.T) {
	b, _ := lookupBuiltin("sleep")
	f, err := b.New(map[string]any{"duration": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := f(ctx, &Record{}); err == nil || time.Since(start) > time.Minute {
		t.Errorf("sleep returned %v after %s", err, time.Since(start))
	}
}

func TestBuiltinOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
		want string
	}{
		{"identity", map[string]any{"x": 1}, `unknown option "x" (takes no options)`},
		{"split", map[string]any{"keyfrom": "field"}, `unknown option "keyfrom" (did you mean "key_from"?)`},
		{"split", map[string]any{"separator": ","}, `unknown option "separator" (known: sep, key_from)`},
		{"split", map[string]any{"sep": ""}, `option sep: must not be empty (leave it out to split at white space)`},
		{"split", map[string]any{"key_from": "line"}, `option key_from: want input or field, got "line"`},
		{"split", map[string]any{"sep": 1}, `option sep: expected a string, got int`},
		{"grep", nil, `option pattern: required`},
		{"grep", map[string]any{"pattern": "("}, "option pattern: error parsing regexp: missing closing ): `(`"},
		{"grep", map[string]any{"pattern": "a", "invert": "yes"}, `option invert: expected true or false, got string`},
		{"format", map[string]any{"template": "{nope}"}, `option template: unknown placeholder {nope} (want {key}, {payload} or {meta.NAME})`},
		{"format", map[string]any{"template": "a}"}, `option template: unmatched } at byte 1 (write }} for a literal brace)`},
		{"format", map[string]any{"template": "{key"}, `option template: unclosed { at byte 0`},
		{"sleep", map[string]any{"duration": "soon"}, `option duration: bad duration "soon"`},
		{"sleep", map[string]any{"a": 1, "b": 2}, `unknown options "a", "b" (known: duration)`},
	}
	for _, tt := range tests {
		b, _ := lookupBuiltin(tt.name)
		_, err := b.New(tt.opts)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s(%v) error = %v, want %s", tt.name, tt.opts, err, tt.want)
		}
	}
	for _, name := range []string{"count", "sum"} {
		b, _ := lookupBuiltin(name)
		if _, err := b.Reduce(map[string]any{"x": 1}); err == nil || err.Error() != `unknown option "x" (takes no options)` {
			t.Errorf("%s with options: %v", name, err)
		}
	}
}

func fold(t *testing.T, name string, payloads ...string) (string, error) {
	t.Helper()
	b, _ := lookupBuiltin(name)
	f, err := b.Reduce(nil)
	if err != nil {
		t.Fatal(err)
	}
	var acc []byte
	for _, p := range payloads {
		if acc, err = f("k", acc, &Record{Key: "k", Payload: []byte(p)}); err != nil {
			return "", err
		}
	}
	return string(acc), nil
}

func TestReduceBuiltins(t *testing.T) {
	for _, c := range []struct {
		name     string
		payloads []string
		want     string
	}{
		{"count", []string{"a", "b", "c"}, "3"},
		{"sum", []string{"1", " 2\n", "-10"}, "-7"},
		{"sum", []string{"1", "0.5"}, "1.5"},
		{"sum", []string{"9223372036854775807", "1"}, "9.223372036854776e+18"},
	} {
		got, err := fold(t, c.name, c.payloads...)
		if err != nil || got != c.want {
			t.Errorf("%s%q = %q, %v; want %q", c.name, c.payloads, got, err, c.want)
		}
	}
	if _, err := fold(t, "sum", "1", "two"); err == nil || err.Error() != `sum: payload "two" is not a number` {
		t.Errorf("sum of a word: %v", err)
	}
}

func TestRegister(t *testing.T) {
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", what)
			}
		}()
		f()
	}
	id, _ := lookupBuiltin("identity")
	mustPanic("duplicate", func() { Register("identity", id) })
	mustPanic("empty name", func() { Register("", id) })
	mustPanic("neither", func() { Register("test-neither", Builtin{}) })
	count, _ := lookupBuiltin("count")
	mustPanic("both", func() { Register("test-both", Builtin{New: id.New, Reduce: count.Reduce}) })
	want := "count format grep identity lower sleep split sum upper"
	if got := strings.Join(Builtins(), " "); !strings.Contains(got, "count format grep identity lower") || !strings.Contains(got, "sleep split sum upper") {
		t.Errorf("Builtins() = %s, want %s among them", got, want)
	}
}
