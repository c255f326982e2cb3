// Package callctx carries the read-only facts about a call of user code (the stage's name, the
// attempt number) in its context, for the runtime and the plugin SDK to set and package troupe
// to read.
package callctx

import "context"

// Info is what a Func, a ReduceFunc or a plugin's Process is told about its call. The runtime
// owns it: a worker may update Attempt between the calls it makes with one context.
type Info struct {
	Stage   string
	Attempt int // 1 for the first attempt at a record
	// Outs, when not nil, is a *[]troupe.Record that a Func of the runtime's own (a builtin)
	// may build its outputs in, from its start, and return: the runtime is done with them
	// before its next call. The runtime lends it where it folds outputs at once (a map-side
	// combine); user code never sees it.
	Outs any
}

type key struct{}

// With returns ctx carrying info.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, key{}, info)
}

// From returns the Info ctx carries, or nil.
func From(ctx context.Context) *Info {
	info, _ := ctx.Value(key{}).(*Info)
	return info
}
