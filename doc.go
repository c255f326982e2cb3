// Package troupe is the Go API for describing pipelines in a program: a source, stages and a
// sink, which package actors runs under an OTP-style supervision tree:
//
//	p := &troupe.Pipeline{
//		Source: actors.NewRangeSource(1000, 16),
//		Stages: []troupe.Stage{{Name: "upper", Func: upper, Workers: 4}},
//		Sink:   actors.NewDiscardSink(),
//	}
//	summary, err := actors.Run(ctx, p)
//
// A Record is a plain value: a key, a payload and metadata. A stage's Func maps one record to
// zero, one or many records; a ReduceFunc folds the records of each key. What a stage may want to
// know about its call (which attempt at the record, the stage's name) it reads from its context
// with Attempt and StageName; the runtime's bookkeeping (sequence numbers, completion weights,
// attempts) lives in the runtime, out of reach of the code it runs. Payload bytes and metadata
// maps are shared with the runtime's copy, which it may deliver again after a failure: a stage
// never writes into them in place (see Record).
//
// Sources, sinks and stages that run elsewhere plug in through interfaces of this package
// (Source, Sink, DeadLetterSink, Backend), in plain Go types: package plugins implements Backend
// with out-of-process plugins. Package actors provides the sources and sinks the troupe command
// uses.
//
// Importing troupe pulls in neither YAML, nor the runtime, nor the plugin host: the supervision
// types it names (Pipeline.Supervision, Stage.Restart's Backoff, Pipeline.Events) come from
// package supervisor/policy, not from package supervisor and its actor runtime, so a plugin
// built with plugins/sdk links no protoactor, prometheus or OpenTelemetry. The YAML spec
// language (what the troupe command runs) is package spec; the builtin stages a spec names, and
// their registry, are package stages.
package troupe
