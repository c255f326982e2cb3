package stages

import (
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/schema"
)

// Builtin is an in-process stage that specs name with `builtin:`. Make one with Func or Reduce,
// which tie the constructor to the type declaring its options.
type Builtin struct {
	// Doc says what the builtin does, in a sentence or two.
	Doc string
	// Options is the type of the builtin's options: a struct whose fields carry schema tags
	// (key, default, bounds, doc; see package internal/schema), and whose Check method, if it
	// has one, holds the rules a tag cannot say. An empty struct takes no options.
	Options reflect.Type
	// New makes a Func stage from a pointer to decoded options; nil for a reduce builtin.
	New func(opts any) (troupe.Func, error)
	// Reduce makes a reduce stage, which runs a single worker; nil for a Func builtin.
	Reduce func(opts any) (troupe.ReduceFunc, error)
	// Combine, for a reduce builtin, merges two of its aggregates (see troupe.CombineFunc); nil
	// if they cannot be merged.
	Combine troupe.CombineFunc
}

// None is the options of a builtin that takes none.
type None struct{}

// Func makes a Func builtin whose options are an O. The constructor gets them decoded, defaults
// filled in and checked; the function it returns is called concurrently by the stage's
// workers, and must never modify the record it is given (the runtime may deliver it again):
// it returns the record as it is or new records.
func Func[O any](doc string, make func(*O) (troupe.Func, error)) Builtin {
	return Builtin{Doc: doc, Options: reflect.TypeFor[O](), New: func(opts any) (troupe.Func, error) {
		return make(opts.(*O))
	}}
}

// Reduce makes a reduce builtin whose options are an O.
func Reduce[O any](doc string, make func(*O) (troupe.ReduceFunc, error)) Builtin {
	return Builtin{Doc: doc, Options: reflect.TypeFor[O](), Reduce: func(opts any) (troupe.ReduceFunc, error) {
		return make(opts.(*O))
	}}
}

// DecodeOptions reads a stage's options from node (nil or null: none given) into a new value of
// b.Options, defaults filled in, and returns it with every problem found, each at its line and
// column with a path relative to the options ("sep").
func (b Builtin) DecodeOptions(node *yaml.Node) (any, schema.Errors) {
	p := reflect.New(b.Options)
	return p.Interface(), schema.Decode(node, p.Interface())
}

// OptionsFromMap reads options given as plain Go values (as a program embedding troupe writes
// them, or as YAML decodes them) by the same rules as DecodeOptions.
func (b Builtin) OptionsFromMap(m map[string]any) (any, error) {
	var node *yaml.Node
	if m != nil {
		node = new(yaml.Node)
		if err := node.Encode(m); err != nil {
			return nil, fmt.Errorf("options: %w", err)
		}
	}
	opts, errs := b.DecodeOptions(node)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Path + ": " + e.Msg
			if e.Path == "" {
				msgs[i] = e.Msg
			}
		}
		return nil, fmt.Errorf("options: %s", strings.Join(msgs, "; "))
	}
	return opts, nil
}

// Make builds the stage's function from options decoded by DecodeOptions or OptionsFromMap:
// exactly one of the results is set when the error is nil.
func (b Builtin) Make(opts any) (troupe.Func, troupe.ReduceFunc, error) {
	if b.New != nil {
		f, err := b.New(opts)
		return f, nil, err
	}
	r, err := b.Reduce(opts)
	return nil, r, err
}

// Reference lists the builtin's option keys with their type, default and doc.
func (b Builtin) Reference() []schema.Field { return schema.Reference(b.Options) }

var (
	registryMu sync.RWMutex
	registry   = map[string]Builtin{}
)

// Register makes a builtin available to specs under name. It panics if name is empty or already
// registered, if b does not set exactly one of New and Reduce, or if its options type has bad
// tags. Call it from an init function, before specs are parsed.
func Register(name string, b Builtin) {
	if name == "" {
		panic("stages: Register with an empty name")
	}
	if (b.New == nil) == (b.Reduce == nil) {
		panic("stages: Register " + name + ": exactly one of New and Reduce must be set")
	}
	if b.Options == nil || b.Options.Kind() != reflect.Struct {
		panic("stages: Register " + name + ": Options must be a struct type")
	}
	if err := schema.Lint(b.Options); err != nil {
		panic("stages: Register " + name + ": " + err.Error())
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("stages: Register called twice for builtin " + name)
	}
	registry[name] = b
}

// Lookup returns the builtin registered under name.
func Lookup(name string) (Builtin, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	b, ok := registry[name]
	return b, ok
}

// Names returns the names of the registered builtins, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}

// Markdown documents every registered builtin: its doc, then a table of its options (or "No
// options."), under a level-3 heading per builtin, in name order.
func Markdown() string {
	var sb strings.Builder
	for _, name := range Names() {
		b, _ := Lookup(name)
		kind := ""
		if b.Reduce != nil {
			kind = " (reduce)"
		}
		fmt.Fprintf(&sb, "### `%s`%s\n\n%s\n\n", name, kind, b.Doc)
		if ref := b.Reference(); len(ref) > 0 {
			sb.WriteString(schema.Markdown(ref))
		} else {
			sb.WriteString("No options.\n")
		}
		sb.WriteString("\n")
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

// Describe writes every registered builtin for a terminal: its name and doc, then one line per
// option with its type, default and doc.
func Describe(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, name := range Names() {
		b, _ := Lookup(name)
		if i > 0 {
			fmt.Fprintln(tw)
		}
		kind := ""
		if b.Reduce != nil {
			kind = " (reduce)"
		}
		fmt.Fprintf(tw, "%s%s: %s\n", name, kind, b.Doc)
		ref := b.Reference()
		if len(ref) == 0 {
			fmt.Fprintf(tw, "  no options\n")
			continue
		}
		for _, f := range ref {
			typ, def, doc := f.Describe()
			if def != "" && !f.Required {
				def = "default " + def
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Path, typ, def, doc)
		}
	}
	return tw.Flush()
}
