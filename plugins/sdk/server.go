package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/callctx"
	"github.com/troupe-dev/troupe/ipc"
)

const (
	defaultCredits = 64
	// flushBytes and flushDelay bound how long results wait before they are sent: a results
	// frame goes out when the input queue is empty, when it holds flushBytes, or when its
	// oldest result is flushDelay old.
	flushBytes = 256 << 10
	flushDelay = 2 * time.Millisecond
)

// server implements the Stage service and the data loop of one plugin process.
type server struct {
	ipc.UnimplementedStageServer

	stage        Stage
	major, minor uint32
	stderr       *os.File

	mu         sync.Mutex
	configured bool
	conn       net.Conn

	ctx    context.Context // cancelled on shutdown; the parent of every Process call
	cancel context.CancelFunc
	// info is what Process is told about its call (troupe.Attempt, troupe.StageName), through
	// cctx; the processing loop updates it before each call.
	info callctx.Info
	cctx context.Context
	in   []troupe.Record // processBatch's scratch: the records passed to ProcessBatch

	stopping atomic.Bool
	stopOnce sync.Once
	loopDone chan struct{} // closed when the processing loop has flushed and returned

	inFlight  atomic.Int64
	processed atomic.Uint64
}

func newServer(s Stage, major, minor uint32, stderr *os.File) *server {
	ctx, cancel := context.WithCancel(context.Background())
	return &server{stage: s, major: major, minor: minor, stderr: stderr, ctx: ctx, cancel: cancel,
		loopDone: make(chan struct{})}
}

func (s *server) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "troupe plugin: "+format+"\n", args...)
}

// fatal reports a broken host connection and exits: the host is gone or misbehaving, so there
// is nobody to report results to.
func (s *server) fatal(format string, args ...any) {
	exit(1, s.stderr, fmt.Sprintf(format, args...))
}

// Configure checks the host's version, runs Setup and starts the data loop.
func (s *server) Configure(_ context.Context, req *ipc.ConfigureRequest) (*ipc.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.configured {
		return nil, status.Error(codes.FailedPrecondition, "plugin is already configured")
	}
	hv := req.GetProtocol()
	if hv.GetMajor() != s.major {
		return nil, status.Errorf(codes.FailedPrecondition,
			"plugin speaks troupe stage protocol %d.%d, host speaks %d.%d",
			s.major, s.minor, hv.GetMajor(), hv.GetMinor())
	}
	if req.GetData() == nil {
		return nil, status.Error(codes.InvalidArgument, "no data channel in the configuration")
	}
	opts, err := decodeOptions(req.GetOptionsJson())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "options: %v", err)
	}
	if s.stage.Setup != nil {
		if err := callSafely(func() error { return s.stage.Setup(opts) }); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "setup: %v", err)
		}
	}
	f := os.NewFile(uintptr(req.GetData().GetFd()), "troupe-data")
	if f == nil {
		return nil, status.Errorf(codes.InvalidArgument, "bad data fd %d", req.GetData().GetFd())
	}
	conn, err := net.FileConn(f) // dups the fd close-on-exec: children do not inherit it
	f.Close()
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "data fd %d: %v", req.GetData().GetFd(), err)
	}
	credits := int(req.GetCredits())
	if credits <= 0 {
		credits = defaultCredits
	}
	maxFrame := int(req.GetMaxFrame())
	if maxFrame <= 0 {
		maxFrame = ipc.DefaultMaxFrame
	}
	s.conn = conn
	s.configured = true
	s.info.Stage = req.GetStage()
	s.cctx = callctx.With(s.ctx, &s.info)
	queue := make(chan *ipc.RecordBuffers, credits)
	go s.readLoop(conn, maxFrame, credits, queue)
	go s.processLoop(conn, maxFrame, queue)
	return &ipc.ConfigureResponse{
		Protocol: &ipc.Version{Major: s.major, Minor: s.minor},
		Credits:  uint32(credits),
	}, nil
}

// Health reports progress.
func (s *server) Health(context.Context, *ipc.HealthRequest) (*ipc.HealthResponse, error) {
	return &ipc.HealthResponse{
		Serving:   !s.stopping.Load(),
		InFlight:  uint64(max(s.inFlight.Load(), 0)),
		Processed: s.processed.Load(),
	}, nil
}

// Shutdown stops the plugin gracefully: in-flight records see their context cancelled, results
// already computed are flushed, Teardown runs. The process exits when the host then closes the
// data connection (or stops the gRPC server).
func (s *server) Shutdown(context.Context, *ipc.ShutdownRequest) (*ipc.ShutdownResponse, error) {
	s.shutdown()
	return &ipc.ShutdownResponse{}, nil
}

func (s *server) shutdown() {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		s.cancel()
		s.mu.Lock()
		configured := s.configured
		s.mu.Unlock()
		if configured {
			<-s.loopDone
		}
		if s.stage.Teardown != nil {
			if err := callSafely(s.stage.Teardown); err != nil {
				s.logf("teardown: %v", err)
			}
		}
	})
}

// readLoop moves batches from the data connection to the queue, a whole frame at a time (one
// channel operation per batch, not per record). The host never has more than the granted
// credits outstanding, and every batch holds at least one record, so the queue (sized to the
// credits) never blocks a well-behaved host.
func (s *server) readLoop(conn net.Conn, maxFrame, credits int, queue chan<- *ipc.RecordBuffers) {
	r := ipc.NewFrameReader(conn, maxFrame)
	var rb *ipc.RecordBuffers
	for {
		if rb == nil {
			rb = recordBuffers.Get().(*ipc.RecordBuffers)
		}
		f, err := r.NextBatch(rb)
		if err != nil {
			if s.stopping.Load() {
				// The host closes the connection after a graceful shutdown: we are done.
				s.shutdown()
				exit(0, nil, "")
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				s.fatal("data connection closed by the host; exiting")
			}
			s.fatal("data connection: %v; exiting", err)
		}
		switch f.Type {
		case ipc.FrameBatch:
			if len(f.Records) == 0 {
				continue
			}
			if s.inFlight.Add(int64(len(f.Records))) > int64(credits) {
				s.fatal("host sent more than the %d records it was granted; exiting", credits)
			}
			select {
			case queue <- rb:
				rb = nil // the processing loop's until it has flushed the batch's results
			case <-s.ctx.Done():
			}
		case ipc.FrameResults:
			s.fatal("host sent a results frame; exiting")
		}
	}
}

// recordBuffers recycles the storage of the records of batch frames (ipc.RecordBuffers).
var recordBuffers = sync.Pool{New: func() any { return new(ipc.RecordBuffers) }}

// pending accumulates outcomes until they are flushed as one results frame. Outputs are encoded
// as soon as a record is processed (ipc.AppendOutput), so the frame keeps no reference to the
// records or to the batch they came in, and nothing is encoded twice.
type pending struct {
	counts []uint32
	outs   []byte // the outputs, encoded back to back
	nOuts  int
	errs   []ipc.RecordError
	// size bounds the frame's body: the outputs, the messages and 5 bytes per count and error.
	size  int
	carry []byte // scratch: a record's outputs moved to the next frame
}

func (p *pending) reset() {
	clear(p.errs) // drop the messages
	p.counts, p.outs, p.errs = p.counts[:0], p.outs[:0], p.errs[:0]
	p.nOuts, p.size = 0, 0
	if cap(p.outs) > 4*flushBytes { // do not pin a huge buffer after one big frame
		p.outs = nil
	}
}

// processLoop runs the stage on each queued batch and streams the outcomes back. A results
// frame (with the credit it returns) goes out when the input queue is empty after a batch, so
// latency stays low at low rates, and otherwise when it holds flushBytes or its oldest outcome
// is flushDelay old, so that a fast stream is sent in few large writes and a slow one (long
// records in a big batch) still reports each record soon after it is done. The age is watched by
// a timer raising a flag, not by reading the clock per record.
func (s *server) processLoop(conn net.Conn, maxFrame int, queue <-chan *ipc.RecordBuffers) {
	defer close(s.loopDone)
	// A results frame goes out as its head, its outputs (as encoded) and its tail with the
	// credit frame, in one writev: the outputs are not copied again.
	var head, tail []byte
	var p pending
	budget := maxFrame - 64 // room for the frame's own counters
	var due atomic.Bool     // the oldest pending outcome is flushDelay old
	timer := time.AfterFunc(time.Hour, func() { due.Store(true) })
	timer.Stop()
	defer timer.Stop()
	flush := func() {
		n := len(p.counts)
		if n == 0 {
			return
		}
		timer.Stop()
		due.Store(false)
		// Account for the records before the host can see the credit and send more.
		s.inFlight.Add(-int64(n))
		s.processed.Add(uint64(n))
		var err error
		head, err = ipc.AppendResultsHead(head[:0], maxFrame, p.counts, p.nOuts, len(p.outs), p.errs)
		if err == nil {
			tail = ipc.AppendResultsTail(tail[:0], p.errs)
			tail = ipc.AppendCredit(tail, uint32(n))
			bufs := net.Buffers{head, p.outs, tail}
			_, err = bufs.WriteTo(conn)
		}
		if cap(tail) > 64<<10 { // error messages: do not keep a large buffer
			tail = nil
		}
		if err != nil && !s.stopping.Load() {
			s.fatal("sending results: %v; exiting", err)
		}
		p.reset()
	}
	defer flush()
	// add appends the outcome of rec to the pending frame: its outputs (with rec's identity on
	// the wire) or its error.
	add := func(rec *ipc.Record, outs []troupe.Record, err error) {
		if len(p.counts) == 0 {
			timer.Reset(flushDelay)
		}
		if err == nil && len(outs) > 0 {
			mark := len(p.outs)
			for k := range outs {
				p.outs = ipc.AppendOutput(p.outs, &outs[k], rec.Seq, rec.Sub, rec.Weight, rec.Flag)
			}
			size := len(p.outs) - mark + 5*len(outs) + 5
			switch {
			case size > budget:
				p.outs = p.outs[:mark]
				err = fmt.Errorf("the record's %d outputs take %d bytes, over the max frame of %d bytes", len(outs), size, maxFrame)
			case p.size+size > budget:
				// The frame would be too large: send the records before this one, and start the
				// next frame with this one's outputs.
				p.carry = append(p.carry[:0], p.outs[mark:]...)
				p.outs = p.outs[:mark]
				flush()
				timer.Reset(flushDelay)
				p.outs = append(p.outs, p.carry...)
				fallthrough
			default:
				p.counts = append(p.counts, uint32(len(outs)))
				p.nOuts += len(outs)
				p.size += size
				return
			}
		}
		if err == nil { // filtered out
			p.counts = append(p.counts, 0)
			p.size += 5
			return
		}
		msg := err.Error()
		if len(msg) > budget/2 {
			msg = msg[:budget/2]
		}
		if p.size+len(msg)+10 > budget {
			flush()
			timer.Reset(flushDelay)
		}
		p.errs = append(p.errs, ipc.RecordError{Index: uint32(len(p.counts)), Message: msg})
		p.counts = append(p.counts, 0)
		p.size += len(msg) + 15
	}
	full := func() bool { return p.size >= flushBytes || len(p.counts) == math.MaxUint16 }
	batched := s.stage.ProcessBatch != nil || s.stage.Concurrency > 1
	for {
		var rb *ipc.RecordBuffers
		select {
		case rb = <-queue:
		case <-s.ctx.Done():
			return
		}
		recs := rb.Ptrs
		if batched {
			outs, errs := s.processBatch(recs) // either may be nil
			if s.ctx.Err() != nil {
				return
			}
			for i, rec := range recs {
				var o []troupe.Record
				var err error
				if outs != nil {
					o = outs[i]
				}
				if errs != nil {
					err = errs[i]
				}
				add(rec, o, err)
				if full() {
					flush()
				}
			}
		} else {
			for _, rec := range recs {
				if s.ctx.Err() != nil {
					return
				}
				outs, err := s.process(rec)
				add(rec, outs, err)
				if full() || due.Load() {
					flush()
				}
			}
		}
		// Every outcome of the batch is encoded: its records are no longer referenced.
		rb.Reset()
		recordBuffers.Put(rb)
		if len(queue) == 0 || due.Load() {
			flush()
		}
	}
}

// process runs Process on one record, turning a panic into that record's error.
func (s *server) process(rec *ipc.Record) ([]troupe.Record, error) {
	s.info.Attempt = int(rec.Attempt) + 1
	return s.call(s.cctx, rec)
}

// call runs Process on rec with ctx, turning a panic into the record's error.
func (s *server) call(ctx context.Context, rec *ipc.Record) (outs []troupe.Record, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.logf("panic processing record seq=%d key=%q: %v\n%s", rec.Seq, rec.Key, v, debug.Stack())
			outs, err = nil, fmt.Errorf("panic: %v", v)
		}
	}()
	return s.stage.Process(ctx, rec.Record)
}

// processBatch runs the stage on a whole batch: ProcessBatch on it (split into Concurrency
// parts run at once), or Process on each record from Concurrency goroutines. It returns each
// record's outputs and error, by index; either slice may be nil (no outputs, no errors).
func (s *server) processBatch(recs []*ipc.Record) ([][]troupe.Record, []error) {
	n := len(recs)
	workers := min(max(s.stage.Concurrency, 1), n)
	if s.stage.ProcessBatch != nil {
		// The records passed are a scratch slice, reused for the next batch (ProcessBatch's
		// doc says so): the outcomes are consumed before that.
		clear(s.in)
		s.in = s.in[:0]
		for _, r := range recs {
			s.in = append(s.in, r.Record)
		}
		in := s.in
		if workers <= 1 {
			return s.callBatch(in, recs)
		}
		outs, errs := make([][]troupe.Record, n), make([]error, n)
		run := func(lo, hi int) {
			o, e := s.callBatch(in[lo:hi], recs[lo:hi])
			copy(outs[lo:hi], o)
			copy(errs[lo:hi], e)
		}
		var wg sync.WaitGroup
		for k := range workers {
			lo, hi := k*n/workers, (k+1)*n/workers
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(lo, hi)
			}()
		}
		wg.Wait()
		return outs, errs
	}
	// Process from several goroutines, each taking the next record not yet claimed.
	outs, errs := make([][]troupe.Record, n), make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info := callctx.Info{Stage: s.info.Stage}
			ctx := callctx.With(s.ctx, &info)
			for {
				i := int(next.Add(1) - 1)
				if i >= n || s.ctx.Err() != nil {
					return
				}
				info.Attempt = int(recs[i].Attempt) + 1
				outs[i], errs[i] = s.call(ctx, recs[i])
			}
		}()
	}
	wg.Wait()
	return outs, errs
}

// callBatch runs ProcessBatch on in (the records of wire), checking the shape of its answer and
// turning a panic into an error for every record of the call.
func (s *server) callBatch(in []troupe.Record, wire []*ipc.Record) (outs [][]troupe.Record, errs []error) {
	defer func() {
		if v := recover(); v != nil {
			s.logf("panic processing a batch of %d records (first seq=%d key=%q): %v\n%s", len(in), wire[0].Seq, wire[0].Key, v, debug.Stack())
			outs, errs = nil, make([]error, len(in))
			for i := range errs {
				errs[i] = fmt.Errorf("panic: %v", v)
			}
		}
	}()
	outs, errs = s.stage.ProcessBatch(s.cctx, in)
	if (outs != nil && len(outs) != len(in)) || (errs != nil && len(errs) != len(in)) {
		err := fmt.Errorf("ProcessBatch returned %d outputs and %d errors for %d records", len(outs), len(errs), len(in))
		s.logf("%v", err)
		outs, errs = nil, make([]error, len(in))
		for i := range errs {
			errs[i] = err
		}
	}
	return outs, errs // either may be nil: no outputs, no errors
}

func callSafely(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return f()
}

// decodeOptions decodes the stage options, turning integral JSON numbers into int (as the YAML
// spec would have given them to an in-process stage) and the others into float64.
func decodeOptions(b []byte) (map[string]any, error) {
	opts := map[string]any{}
	if len(bytes.TrimSpace(b)) == 0 {
		return opts, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&opts); err != nil {
		return nil, err
	}
	for k, v := range opts {
		opts[k] = normalizeNumbers(v)
	}
	return opts, nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && int64(int(i)) == i {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	}
	return v
}
