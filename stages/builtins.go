package stages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/callctx"
	"github.com/troupe-dev/troupe/internal/schema"
)

// The generic builtins. None of them modifies the record it is given: the runtime may deliver
// it again after a failure, so a builtin returns it as it is or returns new records.
func init() {
	Register("identity", Func("Passes every record through unchanged.", func(*None) (troupe.Func, error) {
		return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
			return []troupe.Record{rec}, nil
		}, nil
	}))
	Register("upper", Func("Upper-cases the payload (Unicode).", func(*None) (troupe.Func, error) {
		return mapPayload(bytes.ToUpper), nil
	}))
	Register("lower", Func("Lower-cases the payload (Unicode).", func(*None) (troupe.Func, error) {
		return mapPayload(bytes.ToLower), nil
	}))
	Register("split", Func("Emits one record per field of the payload (empty fields are skipped), "+
		"each keyed by the field itself unless `key_from: input`: `lines → split → count` counts words.", newSplit))
	Register("grep", Func("Keeps the records whose payload matches a regular expression (or, with `invert`, those that do not).", newGrep))
	Register("format", Func("Rewrites the payload from a template of the record's key, payload and metadata.", newFormat))
	Register("sleep", Func("Passes records through after waiting a while each, to simulate work or to throttle.", newSleep))
	count := Reduce("Counts the records of each key: one record per key at the end of input, its payload the count.",
		func(*None) (troupe.ReduceFunc, error) { return reduceCount, nil })
	count.Combine = combineCount
	Register("count", count)
	sum := Reduce("Adds up the decimal payloads of each key: integers while every value is one (and the sum fits in 64 bits), floating point otherwise.",
		func(*None) (troupe.ReduceFunc, error) { return reduceSum, nil })
	sum.Combine = combineSum
	Register("sum", sum)
}

// mapPayload makes a Func that returns a new record with f applied to the payload; the input
// is left as it is.
func mapPayload(f func([]byte) []byte) troupe.Func {
	return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		return []troupe.Record{{Key: rec.Key, Payload: f(rec.Payload), Meta: rec.Meta}}, nil
	}
}

// SplitOptions are split's options.
type SplitOptions struct {
	Sep     string `yaml:"sep" nonempty:"true" doc:"The separator; any run of white space when absent."`
	Letters bool   `yaml:"letters" default:"false" doc:"Fields are the runs of ASCII letters (A-Z, a-z), anything else separates them, as tr -cs 'A-Za-z' '\\n' splits words; not with sep."`
	KeyFrom string `yaml:"key_from" default:"field" enum:"field|input" doc:"The outputs' key: field makes each field its own key (so that a reduce stage after split groups by word); input keeps the input record's key."`
}

// Check refuses sep with letters.
func (o *SplitOptions) Check() error {
	if o.Letters && o.Sep != "" {
		return schema.Errorf("letters", "letters and sep are exclusive: letters splits at anything that is not a letter")
	}
	return nil
}

func newSplit(o *SplitOptions) (troupe.Func, error) {
	sep, byField := []byte(o.Sep), o.KeyFrom == "field"
	return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		// The runtime may lend a slice to build the outputs in (see callctx.Info.Outs).
		var lent *[]troupe.Record
		if info := callctx.From(ctx); info != nil {
			lent, _ = info.Outs.(*[]troupe.Record)
		}
		var outs []troupe.Record
		if lent != nil {
			outs = (*lent)[:0]
		}
		switch {
		case o.Letters:
			outs = splitLetters(outs, rec, byField)
		case len(sep) == 0:
			outs = splitSpace(outs, rec, byField)
		default:
			outs = splitSep(outs, rec, sep, byField)
		}
		if lent != nil {
			*lent = outs // grown, perhaps: the next call starts from it
		}
		return outs, nil
	}, nil
}

// splitSpace is split at runs of white space (unicode.IsSpace), as bytes.Fields splits.
func splitSpace(outs []troupe.Record, rec troupe.Record, byField bool) []troupe.Record {
	p := rec.Payload
	keys := fieldKeys(rec, byField)
	start := -1
	for i := 0; i < len(p); {
		size, space := 1, false
		if c := p[i]; c < utf8.RuneSelf {
			space = asciiSpace[c]
		} else {
			var r rune
			r, size = utf8.DecodeRune(p[i:])
			space = unicode.IsSpace(r)
		}
		if !space && start < 0 {
			start = i
		} else if space && start >= 0 {
			outs = append(outs, splitField(rec, keys, start, i, byField))
			start = -1
		}
		i += size
	}
	if start >= 0 {
		outs = append(outs, splitField(rec, keys, start, len(p), byField))
	}
	return outs
}

var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// splitSep is split at each sep, empty fields left out.
func splitSep(outs []troupe.Record, rec troupe.Record, sep []byte, byField bool) []troupe.Record {
	p := rec.Payload
	keys := fieldKeys(rec, byField)
	for start := 0; start <= len(p); {
		end := len(p)
		if i := bytes.Index(p[start:], sep); i >= 0 {
			end = start + i
		}
		if end > start {
			outs = append(outs, splitField(rec, keys, start, end, byField))
		}
		start = end + len(sep)
	}
	return outs
}

// fieldKeys is, when the outputs are keyed by field, the payload as one string whose substrings
// are the fields' keys: one allocation per record rather than one per field. (A reduce stage
// that keeps such a key copies it, so as not to hold on to the whole payload.)
func fieldKeys(rec troupe.Record, byField bool) string {
	if !byField {
		return ""
	}
	return string(rec.Payload)
}

// splitField is the output of split for the field rec.Payload[start:end], keyed by the same
// bytes of keys (see fieldKeys). Its payload is the field itself, a sub-slice of rec's: payloads
// are never written in place (see troupe.Record), so sharing is safe and saves a copy per field.
// Each output gets its own copy of a Meta (none is made when rec has none).
func splitField(rec troupe.Record, keys string, start, end int, byField bool) troupe.Record {
	out := troupe.Record{Key: rec.Key, Payload: rec.Payload[start:end:end], Meta: rec.Meta}
	if rec.Meta != nil {
		out.Meta = maps.Clone(rec.Meta)
	}
	if byField {
		out.Key = keys[start:end]
	}
	return out
}

// splitLetters is split with letters: one output per run of ASCII letters in the payload, every
// other byte separating them (bytes of multi-byte UTF-8 characters included, as for tr),
// appended to outs. The words are counted first, so that the outputs take one allocation at
// most.
func splitLetters(outs []troupe.Record, rec troupe.Record, byField bool) []troupe.Record {
	p := rec.Payload
	if outs == nil {
		// A slice of its own: exactly the size it needs. (A lent one grows as it must, once.)
		n, prev := 0, uint8(0)
		for _, c := range p {
			l := asciiLetter[c]
			n += int(l &^ prev)
			prev = l
		}
		if n == 0 {
			return nil
		}
		outs = make([]troupe.Record, 0, n)
	}
	var keys string // made at the first word (see fieldKeys)
	for i := 0; i < len(p); {
		for i < len(p) && asciiLetter[p[i]] == 0 {
			i++
		}
		start := i
		for i < len(p) && asciiLetter[p[i]] != 0 {
			i++
		}
		if i == start {
			break
		}
		if keys == "" {
			keys = fieldKeys(rec, byField)
		}
		if rec.Meta == nil && byField {
			outs = append(outs, troupe.Record{Key: keys[start:i], Payload: p[start:i:i]})
		} else {
			outs = append(outs, splitField(rec, keys, start, i, byField))
		}
	}
	return outs
}

// asciiLetter is 1 for the ASCII letters, A-Z and a-z.
var asciiLetter = func() (t [256]uint8) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c], t[c+'a'-'A'] = 1, 1
	}
	return t
}()

// GrepOptions are grep's options.
type GrepOptions struct {
	Pattern string `yaml:"pattern" required:"true" doc:"A regular expression (Go syntax) matched against the payload."`
	Invert  bool   `yaml:"invert" default:"false" doc:"Keep the records that do not match instead."`
	re      *regexp.Regexp
}

// Check compiles the pattern.
func (o *GrepOptions) Check() error {
	re, err := regexp.Compile(o.Pattern)
	if err != nil {
		return schema.Errorf("pattern", "%v", err)
	}
	o.re = re
	return nil
}

func newGrep(o *GrepOptions) (troupe.Func, error) {
	re, invert := o.re, o.Invert
	if re == nil {
		var err error
		if re, err = regexp.Compile(o.Pattern); err != nil {
			return nil, fmt.Errorf("pattern: %w", err)
		}
	}
	return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		if re.Match(rec.Payload) != invert {
			return []troupe.Record{rec}, nil
		}
		return nil, nil
	}, nil
}

// FormatOptions are format's options.
type FormatOptions struct {
	Template string `yaml:"template" default:"\"{key}\\t{payload}\"" doc:"The new payload: {key}, {payload} and {meta.NAME} are replaced by the record's key, payload and metadata; {{ and }} stand for literal braces."`
	parts    []templatePart
}

// Check parses the template.
func (o *FormatOptions) Check() error {
	parts, err := parseTemplate(o.Template)
	if err != nil {
		return schema.Errorf("template", "%v", err)
	}
	o.parts = parts
	return nil
}

func newFormat(o *FormatOptions) (troupe.Func, error) {
	parts := o.parts
	if parts == nil {
		var err error
		if parts, err = parseTemplate(o.Template); err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
	}
	return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
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
		return []troupe.Record{{Key: rec.Key, Payload: b, Meta: rec.Meta}}, nil
	}, nil
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

// SleepOptions are sleep's options.
type SleepOptions struct {
	Duration time.Duration `yaml:"duration" required:"true" min:"0s" doc:"How long to wait per record, like 10ms."`
}

func newSleep(o *SleepOptions) (troupe.Func, error) {
	d := o.Duration
	return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return []troupe.Record{rec}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil
}

// reduceCount counts records per key. The count is a decimal, incremented in place (acc is the
// fold's own, see troupe.ReduceFunc) while it has fewer than 19 digits, which cannot overflow.
func reduceCount(key string, acc []byte, rec troupe.Record) ([]byte, error) {
	if acc == nil {
		return append(make([]byte, 0, 8), '1'), nil
	}
	if len(acc) >= 19 || !isDigits(acc) {
		n, err := strconv.ParseUint(string(acc), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("count: corrupt aggregate %q", truncate(string(acc), 40))
		}
		if n == math.MaxUint64 {
			return nil, errors.New("count: more than 2^64-1 records")
		}
		return strconv.AppendUint(acc[:0], n+1, 10), nil
	}
	for i := len(acc) - 1; i >= 0; i-- {
		if acc[i] != '9' {
			acc[i]++
			return acc, nil
		}
		acc[i] = '0'
	}
	// All nines: one digit more.
	acc = append(acc, '0')
	acc[0] = '1'
	return acc, nil
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseCount reads a count: a decimal that fits in 64 bits.
func parseCount(b []byte) (uint64, bool) {
	if len(b) >= 19 || !isDigits(b) {
		n, err := strconv.ParseUint(string(b), 10, 64)
		return n, err == nil
	}
	var n uint64
	for _, c := range b {
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// combineCount adds two counts.
func combineCount(key string, acc, partial []byte) ([]byte, error) {
	p, ok := parseCount(partial)
	if !ok {
		return nil, fmt.Errorf("count: corrupt partial count %q", truncate(string(partial), 40))
	}
	var n uint64
	if acc != nil {
		if n, ok = parseCount(acc); !ok {
			return nil, fmt.Errorf("count: corrupt aggregate %q", truncate(string(acc), 40))
		}
	}
	if n+p < n {
		return nil, errors.New("count: more than 2^64-1 records")
	}
	// acc is the stage's own aggregate (what Combine or Reduce returned last for the key).
	return strconv.AppendUint(acc[:0], n+p, 10), nil
}

// combineSum adds a partial sum, which is a decimal like any value it sums.
func combineSum(key string, acc, partial []byte) ([]byte, error) {
	return reduceSum(key, acc, troupe.Record{Key: key, Payload: partial})
}

// reduceSum adds up decimal payloads per key: integers while every value is an integer (and
// the sum fits in 64 bits), floating point otherwise.
func reduceSum(key string, acc []byte, rec troupe.Record) ([]byte, error) {
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
