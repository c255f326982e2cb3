package actors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/callctx"
)

// wordsSource hands out n lines of words: line i holds the words w(i%7), w(i%5) and w(i%3), so
// the counts are known in advance (see wantWordCounts).
type wordsSource struct{ countSource }

func newWordsSource(n int) *wordsSource { return &wordsSource{countSource{n: n}} }

func (s *wordsSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	recs, err := s.countSource.Read(ctx, max)
	for i := range recs {
		k, _ := strconv.Atoi(recs[i].Key)
		recs[i].Payload = []byte(fmt.Sprintf("w%d w%d w%d", k%7, k%5, k%3))
	}
	return recs, err
}

func wantWordCounts(n int) map[string]string {
	c := map[string]int{}
	for i := 0; i < n; i++ {
		c[fmt.Sprintf("w%d", i%7)]++
		c[fmt.Sprintf("w%d", i%5)]++
		c[fmt.Sprintf("w%d", i%3)]++
	}
	out := map[string]string{}
	for k, v := range c {
		out[k] = strconv.Itoa(v)
	}
	return out
}

func splitWords(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
	var out []troupe.Record
	for _, w := range strings.Fields(string(r.Payload)) {
		out = append(out, troupe.Record{Key: w, Payload: []byte(w)})
	}
	return out, nil
}

func countFold(_ string, acc []byte, _ troupe.Record) ([]byte, error) {
	n, _ := strconv.Atoi(string(acc))
	return []byte(strconv.Itoa(n + 1)), nil
}

func addCounts(_ string, acc, partial []byte) ([]byte, error) {
	a, _ := strconv.Atoi(string(acc))
	p, err := strconv.Atoi(string(partial))
	if err != nil {
		return nil, err
	}
	return []byte(strconv.Itoa(a + p)), nil
}

func sinkCounts(s *memSink) map[string]string {
	got := map[string]string{}
	for _, r := range s.recs {
		got[r.Key] = string(r.Payload)
	}
	return got
}

// With a Combine on the reduce stage, the stage before folds its outputs per key: the counts are
// the same as without, and the reduce stage receives partials, far fewer than the words.
func TestCombineFoldsOnTheWorkersBeforeTheReduce(t *testing.T) {
	const n = 20_000
	for _, combine := range []bool{false, true} {
		t.Run(fmt.Sprint("combine=", combine), func(t *testing.T) {
			var merged atomic.Int64
			reduce := troupe.Stage{Name: "count", Reduce: countFold}
			if combine {
				reduce.Combine = func(key string, acc, partial []byte) ([]byte, error) {
					merged.Add(1)
					return addCounts(key, acc, partial)
				}
			}
			sink := &memSink{}
			p := &troupe.Pipeline{Source: newWordsSource(n), Sink: sink,
				Stages: []troupe.Stage{{Name: "split", Func: splitWords, Workers: 2}, reduce}}
			sum, err := Run(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sinkCounts(sink), wantWordCounts(n); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("counts %v, want %v", got, want)
			}
			if in := sum.Stages[1].In; in != 3*n {
				t.Fatalf("the reduce stage counts %d records in, want the %d words", in, 3*n)
			}
			if combine && merged.Load() >= 3*n/10 {
				t.Fatalf("the reduce stage merged %d partials for %d words: the workers did not combine", merged.Load(), 3*n)
			}
			if sum.RecordsOut != int64(len(wantWordCounts(n))) || sum.InFlight != 0 || sum.DeadLetters != 0 {
				t.Fatalf("summary %+v", sum)
			}
		})
	}
}

// A worker that dies mid-batch (a poison line) has its unreported lines redelivered: no word is
// counted twice or lost, and the poison line alone goes to the dead letters.
func TestCombineIsExactWhenWorkersDie(t *testing.T) {
	const n = 5_000
	split := func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
		if r.Key == "1234" {
			panic("poison line")
		}
		return splitWords(ctx, r)
	}
	sink, dead := &memSink{}, &memDead{}
	p := &troupe.Pipeline{Source: newWordsSource(n), Sink: sink, DeadLetters: dead,
		Stages: []troupe.Stage{{Name: "split", Func: split, Workers: 2}, {Name: "count", Reduce: countFold, Combine: addCounts}}}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	want := wantWordCounts(n)
	for _, w := range []int{1234 % 7, 1234 % 5, 1234 % 3} { // the poison line's words are not counted
		k := fmt.Sprintf("w%d", w)
		c, _ := strconv.Atoi(want[k])
		want[k] = strconv.Itoa(c - 1)
	}
	if got := sinkCounts(sink); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	if len(dead.ds) != 1 || dead.ds[0].Key != "1234" || sum.DeadLetters != 1 {
		t.Fatalf("dead letters %+v, want the poison line alone", dead.ds)
	}
}

// A fold that fails on the worker leaves that batch's records uncombined: the reduce stage folds
// them itself, with its retries and dead letters, and the other counts are exact. So too when
// the stage builds its outputs in the slice the runtime lends (as builtins do): the records
// whose outputs were there are run again for the fallback.
func TestCombineFallsBackWhenTheFoldFails(t *testing.T) {
	for _, lending := range []bool{false, true} {
		t.Run(fmt.Sprintf("lending=%v", lending), func(t *testing.T) {
			const n = 3_000
			var calls, splits, lent atomic.Int64
			fold := func(key string, acc []byte, rec troupe.Record) ([]byte, error) {
				calls.Add(1)
				if key == "w6" {
					return nil, errors.New("w6 is refused")
				}
				return countFold(key, acc, rec)
			}
			split := splitWords
			if lending {
				split = func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
					splits.Add(1)
					return lendingSplit(ctx, r, &lent)
				}
			}
			sink, dead := &memSink{}, &memDead{}
			p := &troupe.Pipeline{Source: newWordsSource(n), Sink: sink, DeadLetters: dead,
				Stages: []troupe.Stage{{Name: "split", Func: split, Workers: 2}, {Name: "count", Reduce: fold, Combine: addCounts}}}
			sum, err := Run(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			want := wantWordCounts(n)
			w6, _ := strconv.Atoi(want["w6"])
			delete(want, "w6")
			if lending {
				w0, _ := strconv.Atoi(want["w0"])
				want["w0"] = strconv.Itoa(w0 + 100*(n/10))
			}
			if got := sinkCounts(sink); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("counts %v, want %v", got, want)
			}
			if int(sum.DeadLetters) != w6 || len(dead.ds) != w6 {
				t.Fatalf("%d dead letters, want the %d records of w6", sum.DeadLetters, w6)
			}
			for _, d := range dead.ds {
				if d.Key != "w6" || d.Stage != "count" || !strings.Contains(d.Error, "w6 is refused") {
					t.Fatalf("dead letter %+v, want a w6 of stage count", d)
				}
			}
			if lending && (lent.Load() == 0 || splits.Load() <= n) {
				t.Fatalf("%d calls of %d records, %d in a lent slice: the lent slice was not used, or no record ran again", splits.Load(), n, lent.Load())
			}
		})
	}
}

// lendingSplit is splitWords building its outputs in the slice the runtime lends, if any, as
// the builtins do (see callctx.Info.Outs); every 10th record has 100 more words, which grow it.
func lendingSplit(ctx context.Context, r troupe.Record, lent *atomic.Int64) ([]troupe.Record, error) {
	var out []troupe.Record
	buf, _ := callctx.From(ctx).Outs.(*[]troupe.Record)
	if buf != nil {
		out = (*buf)[:0]
		lent.Add(1)
	}
	words := strings.Fields(string(r.Payload))
	if k, _ := strconv.Atoi(r.Key); k%10 == 0 {
		for range 100 {
			words = append(words, "w0")
		}
	}
	for _, w := range words {
		out = append(out, troupe.Record{Key: w, Payload: []byte(w)})
	}
	if buf != nil {
		*buf = out
	}
	return out, nil
}

// With a lent slice (see lendingSplit), the counts are exact: outputs folded at once are not
// overwritten by the next call's.
func TestCombineWithALentSlice(t *testing.T) {
	const n = 5_000
	var lent atomic.Int64
	split := func(ctx context.Context, r troupe.Record) ([]troupe.Record, error) {
		return lendingSplit(ctx, r, &lent)
	}
	sink := &memSink{}
	p := &troupe.Pipeline{Source: newWordsSource(n), Sink: sink,
		Stages: []troupe.Stage{{Name: "split", Func: split, Workers: 2}, {Name: "count", Reduce: countFold, Combine: addCounts}}}
	if _, err := Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	want := wantWordCounts(n)
	w0, _ := strconv.Atoi(want["w0"])
	want["w0"] = strconv.Itoa(w0 + 100*(n/10))
	if got := sinkCounts(sink); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	if lent.Load() != n {
		t.Fatalf("%d of %d calls had a lent slice", lent.Load(), n)
	}
}

// A Combine that fails on aggregates of its own stage aborts the run, naming the stage and key:
// a count known to be wrong is never written.
func TestCombineFailureAbortsTheRun(t *testing.T) {
	merge := func(key string, acc, partial []byte) ([]byte, error) {
		if key == "w2" {
			return nil, errors.New("cannot merge")
		}
		return addCounts(key, acc, partial)
	}
	sink := &memSink{}
	p := &troupe.Pipeline{Source: newWordsSource(1000), Sink: sink,
		Stages: []troupe.Stage{{Name: "split", Func: splitWords, Workers: 2}, {Name: "count", Reduce: countFold, Combine: merge}}}
	sum, err := Run(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), `stage count: merging partial aggregates of key "w2": cannot merge`) {
		t.Fatalf("err %v; want the merge failure named", err)
	}
	if sum.Outcome != troupe.OutcomeAborted || len(sink.recs) != 0 {
		t.Fatalf("outcome %v with %d records written; want aborted before the aggregates", sum.Outcome, len(sink.recs))
	}
}

func TestCombineNeedsReduce(t *testing.T) {
	p := &troupe.Pipeline{Source: newWordsSource(1), Sink: &memSink{},
		Stages: []troupe.Stage{{Name: "split", Func: splitWords, Combine: addCounts}}}
	if _, err := Run(context.Background(), p); err == nil || !strings.Contains(err.Error(), "Combine is for a reduce stage") {
		t.Fatalf("err %v; want Combine without Reduce refused", err)
	}
}
