package cluster

import (
	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/cluster/clusterpb"
)

func toRec(r troupe.Record) *clusterpb.Rec {
	return &clusterpb.Rec{Key: r.Key, Payload: r.Payload, Meta: r.Meta}
}

func fromRec(r *clusterpb.Rec) troupe.Record {
	if r == nil {
		return troupe.Record{}
	}
	return troupe.Record{Key: r.Key, Payload: r.Payload, Meta: r.Meta}
}

func toBatch(tasks []troupe.Task) *clusterpb.Batch {
	b := &clusterpb.Batch{Records: make([]*clusterpb.Rec, len(tasks)), Attempts: make([]uint32, len(tasks))}
	recs := make([]clusterpb.Rec, len(tasks))
	for i, t := range tasks {
		recs[i] = clusterpb.Rec{Key: t.Record.Key, Payload: t.Record.Payload, Meta: t.Record.Meta}
		b.Records[i] = &recs[i]
		b.Attempts[i] = uint32(t.Attempt)
	}
	return b
}

func fromBatch(b *clusterpb.Batch) []troupe.Task {
	tasks := make([]troupe.Task, len(b.Records))
	for i, r := range b.Records {
		tasks[i] = troupe.Task{Record: fromRec(r), Attempt: 1}
		if i < len(b.Attempts) {
			tasks[i].Attempt = int(b.Attempts[i])
		}
	}
	return tasks
}

func toResults(rs []troupe.Result) *clusterpb.Results {
	n := 0
	for _, r := range rs {
		if r.Err == nil {
			n += len(r.Outputs)
		}
	}
	m := &clusterpb.Results{Counts: make([]uint32, len(rs)), Outputs: make([]*clusterpb.Rec, 0, n)}
	recs := make([]clusterpb.Rec, 0, n)
	for i, r := range rs {
		if r.Err != nil {
			m.Errors = append(m.Errors, &clusterpb.RecordError{Index: uint32(i), Message: r.Err.Error()})
			continue
		}
		m.Counts[i] = uint32(len(r.Outputs))
		for _, o := range r.Outputs {
			recs = append(recs, clusterpb.Rec{Key: o.Key, Payload: o.Payload, Meta: o.Meta})
			m.Outputs = append(m.Outputs, &recs[len(recs)-1])
		}
	}
	return m
}

// remoteError is an error reported by a worker on a node, as its text.
type remoteError string

func (e remoteError) Error() string { return string(e) }

// fromResults checks and converts a Results message: nil and false when it is malformed (the
// counts do not add up to the outputs, an error names a record out of range).
func fromResults(m *clusterpb.Results) ([]troupe.Result, bool) {
	rs := make([]troupe.Result, len(m.Counts))
	next := 0
	for i, c := range m.Counts {
		if int(c) > len(m.Outputs)-next {
			return nil, false
		}
		outs := make([]troupe.Record, c)
		for j := range outs {
			outs[j] = fromRec(m.Outputs[next+j])
		}
		next += int(c)
		rs[i].Outputs = outs
	}
	if next != len(m.Outputs) {
		return nil, false
	}
	for _, e := range m.Errors {
		if int(e.Index) >= len(rs) || rs[e.Index].Outputs == nil || len(rs[e.Index].Outputs) != 0 {
			return nil, false
		}
		rs[e.Index] = troupe.Result{Err: remoteError(e.Message)}
	}
	return rs, true
}
