package stages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/callctx"
)

// apply runs the builtin name with opts on one record.
func apply(t *testing.T, name string, opts map[string]any, key, payload string) []troupe.Record {
	t.Helper()
	f, _, err := build(name, opts)
	if err != nil || f == nil {
		t.Fatalf("%s(%v): %v", name, opts, err)
	}
	in := troupe.Record{Key: key, Payload: []byte(payload), Meta: map[string]string{"m": "v"}}
	outs, err := f(context.Background(), in)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if in.Key != key || string(in.Payload) != payload || len(in.Meta) != 1 || in.Meta["m"] != "v" {
		t.Errorf("%s modified its input: %v", name, in)
	}
	return outs
}

// build makes the builtin name from options as Go values.
func build(name string, opts map[string]any) (troupe.Func, troupe.ReduceFunc, error) {
	b, ok := Lookup(name)
	if !ok {
		return nil, nil, fmt.Errorf("no builtin %q", name)
	}
	o, err := b.OptionsFromMap(opts)
	if err != nil {
		return nil, nil, err
	}
	return b.Make(o)
}

// got renders the outputs of name with opts on one record with key k.
func got(t *testing.T, name string, opts map[string]any, payload string) string {
	t.Helper()
	return render(apply(t, name, opts, "k", payload))
}

func render(recs []troupe.Record) string {
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
		{"split", nil, "  a b\tc\n", "a=a b=b c=c"},
		{"split", map[string]any{"key_from": "input"}, "a b", "k=a k=b"},
		{"split", map[string]any{"sep": ",", "key_from": "field"}, "x,,y,", "x=x y=y"},
		{"split", map[string]any{"key_from": "input"}, "", ""},
		{"split", map[string]any{"letters": true}, "Hi, it's  x2y_Z—ok\n", "Hi=Hi it=it s=s x=x y=y Z=Z ok=ok"},
		{"grep", map[string]any{"pattern": "^a"}, "abc", "k=abc"},
		{"grep", map[string]any{"pattern": "^a"}, "bca", ""},
		{"grep", map[string]any{"pattern": "^a", "invert": true}, "bca", "k=bca"},
		{"format", nil, "1", "k=k\t1"},
		{"format", map[string]any{"template": "{{{key}}}:{payload}/{meta.m}{meta.none}"}, "p", "k={k}:p/v"},
		{"sleep", map[string]any{"duration": "1ms"}, "p", "k=p"},
	}
	for _, tt := range tests {
		if got := got(t, tt.name, tt.opts, tt.payload); got != tt.want {
			t.Errorf("%s %v on %q = %q, want %q", tt.name, tt.opts, tt.payload, got, tt.want)
		}
		// The runtime may send a record again (after a restart): the same record twice gives
		// the same outputs (format used to rewrite its input, and a resent record came out as
		// "2\t2\tb"); apply checks that the input is left as it was.
		if twice := render(apply(t, tt.name, tt.opts, "k", tt.payload)); twice != got(t, tt.name, tt.opts, tt.payload) {
			t.Errorf("%s %v on the same record twice gave different outputs", tt.name, tt.opts)
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

// split's outputs share their input's bytes (payloads are never written in place), but one
// that appends to its payload must not write over the next field or the input.
func TestSplitPayloadsDoNotOverlap(t *testing.T) {
	for _, opts := range []map[string]any{nil, {"letters": true}, {"sep": ","}} {
		f, _, err := build("split", opts)
		if err != nil {
			t.Fatal(err)
		}
		in := []byte("ab,cd")
		if opts == nil {
			in = []byte("ab cd")
		}
		want := string(in)
		outs, err := f(context.Background(), troupe.Record{Key: "k", Payload: in})
		if err != nil || len(outs) != 2 {
			t.Fatalf("split %v: %d outputs, %v", opts, len(outs), err)
		}
		_ = append(outs[0].Payload, 'X')
		if string(outs[1].Payload) != "cd" || string(outs[0].Payload) != "ab" || string(in) != want {
			t.Errorf("split %v: appending to an output changed another or the input: %q %q %q", opts, outs[0].Payload, outs[1].Payload, in)
		}
	}
}

func TestSleepHonoursContext(t *testing.T) {
	f, _, err := build("sleep", map[string]any{"duration": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := f(ctx, troupe.Record{}); err == nil || time.Since(start) > time.Minute {
		t.Errorf("sleep returned %v after %s", err, time.Since(start))
	}
}

func TestBuiltinOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
		want string
	}{
		{"identity", map[string]any{"x": 1}, `options: unknown key "x" (takes none)`},
		{"split", map[string]any{"keyfrom": "field"}, `options: unknown key "keyfrom" (did you mean "key_from"?)`},
		{"split", map[string]any{"separator": ","}, `options: unknown key "separator" (want one of: sep, letters, key_from)`},
		{"split", map[string]any{"sep": ",", "letters": true}, `options: letters: letters and sep are exclusive: letters splits at anything that is not a letter`},
		{"split", map[string]any{"sep": ""}, `options: sep: must not be empty`},
		{"split", map[string]any{"key_from": "line"}, `options: key_from: unknown value "line" (want one of: field, input)`},
		{"split", map[string]any{"sep": true}, `options: sep: want a string, got boolean true`},
		{"grep", nil, `options: missing key "pattern"`},
		{"grep", map[string]any{"pattern": "("}, "options: pattern: error parsing regexp: missing closing ): `(`"},
		{"grep", map[string]any{"pattern": "a", "invert": "yes"}, `options: invert: want true or false, got string "yes"`},
		{"format", map[string]any{"template": "{nope}"}, `options: template: unknown placeholder {nope} (want {key}, {payload} or {meta.NAME})`},
		{"format", map[string]any{"template": "a}"}, `options: template: unmatched } at byte 1 (write }} for a literal brace)`},
		{"format", map[string]any{"template": "{key"}, `options: template: unclosed { at byte 0`},
		{"sleep", map[string]any{"duration": "soon"}, `options: duration: bad duration "soon" (want a duration like 30s or 1m30s)`},
		{"sleep", map[string]any{"a": 1, "b": 2}, `options: unknown key "a" (want one of: duration); unknown key "b" (want one of: duration); missing key "duration"`},
	}
	for _, tt := range tests {
		_, _, err := build(tt.name, tt.opts)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s(%v) error = %v, want %s", tt.name, tt.opts, err, tt.want)
		}
	}
	for _, name := range []string{"count", "sum"} {
		if _, _, err := build(name, map[string]any{"x": 1}); err == nil || err.Error() != `options: unknown key "x" (takes none)` {
			t.Errorf("%s with options: %v", name, err)
		}
	}
}

func fold(t *testing.T, name string, payloads ...string) (string, error) {
	t.Helper()
	_, f, err := build(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var acc []byte
	for _, p := range payloads {
		if acc, err = f("k", acc, troupe.Record{Key: "k", Payload: []byte(p)}); err != nil {
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

// A reduce builtin's Combine merges two partial folds into what one fold of all the records gives.
func TestReduceBuiltinsCombine(t *testing.T) {
	for _, c := range []struct {
		name     string
		one, two []string
	}{
		{"count", []string{"a", "b", "c"}, []string{"d", "e"}},
		{"sum", []string{"1", " 2\n"}, []string{"-10"}},
		{"sum", []string{"1"}, []string{"0.5", "2"}},
		{"sum", []string{"9223372036854775807"}, []string{"1"}},
	} {
		b, ok := Lookup(c.name)
		if !ok || b.Combine == nil {
			t.Fatalf("%s: no Combine", c.name)
		}
		a, err1 := fold(t, c.name, c.one...)
		p, err2 := fold(t, c.name, c.two...)
		whole, err3 := fold(t, c.name, append(append([]string{}, c.one...), c.two...)...)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		got, err := b.Combine("k", []byte(a), []byte(p))
		if err != nil || string(got) != whole {
			t.Errorf("%s: combine(%s, %s) = %q, %v; want %q", c.name, a, p, got, err, whole)
		}
		if got, err := b.Combine("k", nil, []byte(p)); err != nil || string(got) != p {
			t.Errorf("%s: combine(nil, %s) = %q, %v; want %q", c.name, p, got, err, p)
		}
	}
	if _, err := registry["count"].Combine("k", []byte("2"), []byte("x")); err == nil {
		t.Error("count combined a corrupt partial")
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
	id, _ := Lookup("identity")
	mustPanic("duplicate", func() { Register("identity", id) })
	mustPanic("empty name", func() { Register("", id) })
	mustPanic("neither", func() { Register("test-neither", Builtin{}) })
	count, _ := Lookup("count")
	mustPanic("both", func() { Register("test-both", Builtin{New: id.New, Reduce: count.Reduce}) })
	want := "count format grep identity lower sleep split sum upper"
	if got := strings.Join(Names(), " "); !strings.Contains(got, "count format grep identity lower") || !strings.Contains(got, "sleep split sum upper") {
		t.Errorf("Names() = %s, want %s among them", got, want)
	}
}

// split's fields and keys are exactly those of bytes.Fields / bytes.Split (empty ones left
// out), whatever the white space or the bytes (invalid UTF-8 is not white space).
func TestSplitMatchesBytesFieldsAndSplit(t *testing.T) {
	inputs := []string{
		"", " ", "a", " a ", "a  b\t\tc\n", "\u00a0x\u2003y\u3000", "é è\u0085ê", "\xff \xfe\x80 a\xc2",
		"x,,y,", ",", ",,a,,", "a,b", "ab::cd::", "::", "a:::b",
	}
	for _, sep := range []string{"", ",", "::"} {
		opts := map[string]any{}
		if sep != "" {
			opts["sep"] = sep
		}
		f, _, err := build("split", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range inputs {
			var want [][]byte
			if sep == "" {
				want = bytes.Fields([]byte(in))
			} else {
				for _, w := range bytes.Split([]byte(in), []byte(sep)) {
					if len(w) > 0 {
						want = append(want, w)
					}
				}
			}
			outs, err := f(context.Background(), troupe.Record{Key: "k", Payload: []byte(in)})
			if err != nil || len(outs) != len(want) {
				t.Fatalf("split %q at %q: %d outputs, %v; want %d", in, sep, len(outs), err, len(want))
			}
			for i, o := range outs {
				if string(o.Payload) != string(want[i]) || o.Key != string(want[i]) {
					t.Errorf("split %q at %q: output %d is %q=%q, want %q", in, sep, i, o.Key, o.Payload, want[i])
				}
			}
		}
	}
}

// count's fold carries across digits, and past what fits in the in-place fast path.
func TestCountCarries(t *testing.T) {
	_, f, err := build("count", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ acc, want string }{
		{"0", "1"}, {"9", "10"}, {"19", "20"}, {"99", "100"}, {"1099", "1100"},
		{"999999999999999999", "1000000000000000000"},
		{"9999999999999999999", "10000000000000000000"},
		{"18446744073709551614", "18446744073709551615"},
	} {
		got, err := f("k", []byte(c.acc), troupe.Record{Key: "k"})
		if err != nil || string(got) != c.want {
			t.Errorf("count after %s = %q, %v; want %s", c.acc, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "x", "1x", "-1", "18446744073709551615", "18446744073709551616"} {
		if got, err := f("k", []byte(bad), troupe.Record{Key: "k"}); err == nil {
			t.Errorf("count after %q = %q, want an error", bad, got)
		}
	}
	combine := registry["count"].Combine
	if got, err := combine("k", []byte("18446744073709551615"), []byte("1")); err == nil {
		t.Errorf("combine overflowed to %q", got)
	}
	if got, err := combine("k", []byte("9999999999999999999"), []byte("8446744073709551616")); err != nil || string(got) != "18446744073709551615" {
		t.Errorf("combine = %q, %v", got, err)
	}
}

// Given a slice to build its outputs in (callctx.Info.Outs), split builds them there, from its
// start, growing it as needed and leaving it grown for the next call; the outputs are the same.
func TestSplitUsesALentSlice(t *testing.T) {
	for _, opts := range []map[string]any{nil, {"letters": true}, {"sep": ","}, {"letters": true, "key_from": "input"}} {
		f, _, err := build("split", opts)
		if err != nil {
			t.Fatal(err)
		}
		lent := make([]troupe.Record, 0, 2)
		ctx := callctx.With(context.Background(), &callctx.Info{Outs: &lent})
		for _, payload := range []string{"a,b c", "x,y,z w,v u,t,s", "", "q"} {
			rec := troupe.Record{Key: "k", Payload: []byte(payload)}
			want, err := f(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f(ctx, rec)
			if err != nil || render(got) != render(want) {
				t.Fatalf("split %v of %q with a lent slice: %s, %v; want %s", opts, payload, render(got), err, render(want))
			}
			if len(got) > 0 && &got[0] != &lent[:1][0] {
				t.Fatalf("split %v of %q: outputs not in the lent slice", opts, payload)
			}
		}
		if cap(lent) < 4 {
			t.Fatalf("split %v: the lent slice was not left grown (cap %d)", opts, cap(lent))
		}
	}
}
