package cluster

import (
	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/cluster/clusterpb"
)

// pack lays records out as a clusterpb.Records: two allocations, whatever their number.
func pack(n int, rec func(i int) *troupe.Record) *clusterpb.Records {
	klen, plen := 0, 0
	for i := range n {
		r := rec(i)
		klen += len(r.Key)
		plen += len(r.Payload)
	}
	m := &clusterpb.Records{
		Keys: make([]byte, 0, klen), KeyLens: make([]uint32, n),
		Payloads: make([]byte, 0, plen), PayloadLens: make([]uint32, n),
	}
	for i := range n {
		r := rec(i)
		m.Keys = append(m.Keys, r.Key...)
		m.KeyLens[i] = uint32(len(r.Key))
		m.Payloads = append(m.Payloads, r.Payload...)
		m.PayloadLens[i] = uint32(len(r.Payload))
		if len(r.Meta) > 0 {
			m.Metas = append(m.Metas, &clusterpb.RecordMeta{Index: uint32(i), Meta: r.Meta})
		}
	}
	return m
}

// unpack checks and unpacks a clusterpb.Records into out (len(out) records): false when the
// lengths do not add up or the metadata is out of place. The keys share one string and the
// payloads one array (each capped at its own length, so an append never reaches the next).
func unpack(m *clusterpb.Records, out []troupe.Record) bool {
	if m == nil {
		return len(out) == 0
	}
	if len(m.KeyLens) != len(out) || len(m.PayloadLens) != len(out) {
		return false
	}
	keys := string(m.Keys)
	k, p := 0, 0
	for i := range out {
		kl, pl := int(m.KeyLens[i]), int(m.PayloadLens[i])
		if kl > len(keys)-k || pl > len(m.Payloads)-p {
			return false
		}
		out[i] = troupe.Record{Key: keys[k : k+kl]}
		if pl > 0 {
			out[i].Payload = m.Payloads[p : p+pl : p+pl]
		}
		k, p = k+kl, p+pl
	}
	if k != len(keys) || p != len(m.Payloads) {
		return false
	}
	next := 0
	for _, md := range m.Metas {
		if md == nil || int(md.Index) < next || int(md.Index) >= len(out) {
			return false
		}
		out[md.Index].Meta = md.Meta
		next = int(md.Index) + 1
	}
	return true
}

func toBatch(tasks []troupe.Task) *clusterpb.Batch {
	b := &clusterpb.Batch{Records: pack(len(tasks), func(i int) *troupe.Record { return &tasks[i].Record }), Attempts: make([]uint32, len(tasks))}
	for i, t := range tasks {
		b.Attempts[i] = uint32(t.Attempt)
	}
	return b
}

// fromBatch checks and converts a Batch: false when it is malformed.
func fromBatch(b *clusterpb.Batch) ([]troupe.Task, bool) {
	n := len(b.Attempts)
	recs := make([]troupe.Record, n)
	if !unpack(b.Records, recs) {
		return nil, false
	}
	tasks := make([]troupe.Task, n)
	for i := range tasks {
		tasks[i] = troupe.Task{Record: recs[i], Attempt: max(int(b.Attempts[i]), 1)}
	}
	return tasks, true
}

func toResults(rs []troupe.Result) *clusterpb.Results {
	n := 0
	for _, r := range rs {
		if r.Err == nil {
			n += len(r.Outputs)
		}
	}
	outs := make([]*troupe.Record, 0, n)
	m := &clusterpb.Results{Counts: make([]uint32, len(rs))}
	for i, r := range rs {
		if r.Err != nil {
			m.Errors = append(m.Errors, &clusterpb.RecordError{Index: uint32(i), Message: r.Err.Error()})
			continue
		}
		m.Counts[i] = uint32(len(r.Outputs))
		for j := range r.Outputs {
			outs = append(outs, &r.Outputs[j])
		}
	}
	m.Outputs = pack(len(outs), func(i int) *troupe.Record { return outs[i] })
	return m
}

// remoteError is an error reported by a worker on a node, as its text.
type remoteError string

func (e remoteError) Error() string { return string(e) }

// fromResults checks and converts a Results message: nil and false when it is malformed (the
// counts do not add up to the outputs, an error names a record out of range or one with
// outputs, or twice).
func fromResults(m *clusterpb.Results) ([]troupe.Result, bool) {
	total := 0
	for _, c := range m.Counts {
		total += int(c)
		if total > 1<<31 {
			return nil, false
		}
	}
	var nOut int
	if m.Outputs != nil {
		nOut = len(m.Outputs.KeyLens)
	}
	if total != nOut {
		return nil, false
	}
	all := make([]troupe.Record, total)
	if !unpack(m.Outputs, all) {
		return nil, false
	}
	rs := make([]troupe.Result, len(m.Counts))
	next := 0
	for i, c := range m.Counts {
		rs[i].Outputs = all[next : next+int(c) : next+int(c)]
		next += int(c)
	}
	for _, e := range m.Errors {
		if e == nil || int(e.Index) >= len(rs) || rs[e.Index].Err != nil || len(rs[e.Index].Outputs) != 0 {
			return nil, false
		}
		rs[e.Index] = troupe.Result{Err: remoteError(e.Message)}
	}
	return rs, true
}
