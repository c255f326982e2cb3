package stages_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/stages"
)

// RepeatOptions declare the options of a builtin once: key, default, bounds and doc.
type RepeatOptions struct {
	Times int `yaml:"times" default:"2" min:"1" max:"10" doc:"How many copies of each record."`
}

// A program registers its own builtin, with its options declared as a struct; specs then name
// it with builtin: repeat, and their options are checked against the declaration.
func ExampleFunc() {
	stages.Register("repeat", stages.Func("Emits each record several times.", func(o *RepeatOptions) (troupe.Func, error) {
		return func(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
			outs := make([]troupe.Record, o.Times)
			for i := range outs {
				outs[i] = rec // the input, unchanged: a builtin never modifies it
			}
			return outs, nil
		}, nil
	}))
	b, _ := stages.Lookup("repeat")
	if _, err := b.OptionsFromMap(map[string]any{"times": 11}); err != nil {
		fmt.Println(err)
	}
	opts, _ := b.OptionsFromMap(nil) // the defaults
	f, _, _ := b.Make(opts)
	outs, _ := f(context.Background(), troupe.Record{Key: "k", Payload: []byte("hi")})
	fmt.Println(len(outs))
	for _, f := range b.Reference() {
		typ, def, doc := f.Describe()
		fmt.Println(strings.Join([]string{f.Path, typ, def, doc}, " | "))
	}
	// Output:
	// options: times: must be at most 10, got 11
	// 2
	// times | integer, 1 to 10 | 2 | How many copies of each record.
}
