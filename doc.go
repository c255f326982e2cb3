// Package troupe is the Go API for building and running pipelines in a program: a source,
// stages and a sink under an OTP-style supervision tree. Its types are those of package actors
// (the runtime), under the names a program uses:
//
//	p := &troupe.Pipeline{
//		Source: actors.NewRangeSource(1000, 16),
//		Stages: []troupe.Stage{{Name: "upper", Func: upper, Workers: 4}},
//		Sink:   actors.NewDiscardSink(),
//	}
//	summary, err := p.Run(ctx)
//
// A stage's Func maps one record to zero, one or many new records and never changes the record
// it is given (the runtime may deliver it again after a failure); a ReduceFunc folds the records
// of each key. Out-of-process stages are package plugins.
//
// Importing troupe pulls in neither YAML nor the plugin host. The YAML spec language (what the
// troupe command runs) is package spec; the builtin stages a spec names, and their registry,
// are package stages.
package troupe
