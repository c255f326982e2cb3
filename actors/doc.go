// Package actors is the runtime that runs the pipelines package troupe describes: a source,
// stages and a sink, each stage a distributor actor and its workers, under a supervision tree
// (package supervisor). Run runs a *troupe.Pipeline to its end; Start returns a Job to watch
// (Progress) and stop it; StartUnder starts a run's tree under a supervisor that outlives it,
// in an actor system shared with other runs (package engine runs each job of a server so). It
// also provides the sources and sinks the troupe command uses (lines, files, a synthetic range;
// a JSONL dead-letter output) and those a server needs: records from a slice, strings, a
// channel or an io.Reader; results to a callback, a channel, or memory (MemorySink, bounded).
// It knows records, credits, acks, stages, sources and sinks; it knows nothing of YAML or of OS
// processes (a stage that runs its records elsewhere plugs in through troupe.Backend).
//
// # The user's record and the runtime's envelope
//
// User code sees troupe.Record values: a key, a payload, metadata. The runtime carries each record
// in an envelope of its own that adds the bookkeeping: the source record's sequence number, its
// identity among the outputs of a split (sub), its completion weight, the attempts it has
// failed, and a flag for the runtime's markers (END, DROPPED). Only the runtime makes envelopes:
// from what a Source returned (copied on read), and from what a stage returned (each output gets
// its input's identity here, whatever the stage did; a single output goes in its input's envelope
// when no one else can still read it, see envelope.owned). A Func is handed a copy of the record with
// its own Meta map; nothing it does to it, or to what it returns, reaches the books. The facts a
// call may want (which attempt, which stage) come through its context: troupe.Attempt and
// troupe.StageName.
//
// # One record's journey
//
//		source ──batch──▶ distributor ──work──▶ worker ──results──▶ distributor ──batch──▶ … ──▶ collector ──▶ sink
//		  ▲                                                                                       │
//		  └──────────────────────────────────────── acks ─────────────────────────────────────────┘
//
//	 1. The source reads input only while its window has room, numbers each record (its envelope's seq)
//	    and keeps a copy in the window until the collector acknowledges it. The window is the sum of
//	    the stages' credits, in records and in bytes (keys and payloads), so the records in
//	    flight, and the memory they use, stay bounded whatever the relative speeds of the parts
//	    and the size of the records. It asks its reader for one record first, then for batches
//	    sized by the average record read so far.
//	 2. A stage's distributor queues what it receives and hands each worker records while it
//	    holds fewer than Stage.Credits and their bytes fit in Stage.CreditBytes (one record,
//	    whatever its size, when it holds nothing), always to the worker with the fewest
//	    outstanding (least loaded); the records waiting are shared out evenly among the workers
//	    with room. It keeps what each worker holds, in order, until the worker reports the outcome.
//	 3. A worker runs each record through the stage: a Go Func in the worker's own goroutine, or a
//	    Backend (another process). It reports outcomes in order; the distributor passes outputs on
//	    to the next stage, retries failures (the envelope counts the attempts; troupe.Attempt tells the Func), and sends a record that failed
//	    Stage.Attempts times to the dead-letter output with its last error.
//	 4. When a worker dies (a panic, its process crashing, a hang past Stage.Timeout), the records
//	    it held go back to the distributor's queue; the one it was working on counts a failed
//	    attempt, so a record that kills every worker that touches it ends in dead letters. A
//	    worker whose Backend is at fault rather than a record (it broke its protocol, a
//	    troupe.BackendFault; it made no progress for Stage.Timeout while records waited for its credit)
//	    dies too, and its records go back uncharged (five such deaths of a stage's workers in a
//	    row, without a result in between, abort the run). A Backend that fails to start is a worker
//	    that died at once (restarted by the stage's policy; five failed starts in a row abort the
//	    run), unless its error is a troupe.PermanentError, which aborts the run at once.
//	 5. The collector writes to the sink (in source order with OrderInput), flushes, and acks.
//	    A record counts as out (Summary.RecordsOut) once the flush that carries it succeeded; an
//	    output that fails (a full device) aborts the run, and the count stays what is on disk.
//
// # Completion, splitting and exactly-once at the sink
//
// A stage may emit zero (a filter), one or many (a splitter) records for each input. Every
// source record starts with a completion weight of 2^62; a split divides its record's weight
// among the outputs, a filter returns the weight to the collector in a DROPPED marker, and a
// dead letter carries its weight with it. The collector adds up the weight that reaches it for
// each source sequence number; when the sum is whole, the source record is complete and is
// acked. Outputs of a split carry a deterministic sub (a hash of the parent's Sub, the
// stage and the output's index), so a record processed twice produces the same identities and
// the collector drops the second copy: the sink sees each output exactly once per run.
//
// # Journal: resuming a killed run
//
// With Pipeline.Journal set, the run keeps a journal (journal.go) of the source records whose
// outcome is final, named by their resume key in the source (troupe.Resumable: a files source's
// relative path, size and modification time, a lines source's byte offset, a range source's
// index; the reader asks for each record's key as it reads it). The collector then holds each
// record's outputs and dead letters until the record is complete (and, with OrderInput, its
// turn), so that a flush never carries part of a record; after the flush it syncs the outputs
// that append to one file (the lines sink, the JSONL dead letters) and sends, with the acks, the
// records written and where those outputs stand, in batches of up to 8192 records or 50 ms (so
// that the outputs' and the journal's fsyncs are grouped). The source actor turns them into journal
// entries, which a writer goroutine appends in batches, one frame each (length, CRC-32C), and
// fsyncs (a batch takes what arrived while the previous one was syncing). A journalled record is
// therefore on disk; a kill redoes what was in flight and the last unsynced batch.
//
// A run with an existing journal checks its header against the source's Fingerprint (another
// source is refused, ErrJournalMismatch), reads its entries (a torn last frame is cut off and
// ignored), and calls Source.Resume with a done predicate: the source does not produce the
// records done (dead letters count as done unless Journal.RetryDeadLetters), and the reader
// passes over any it produces anyway; Summary.Skipped counts them. The lines sink and the
// dead-letter file are cut back to where the journal's last batch left them (what the killed run
// wrote after it belongs to records done again) and appended to; the lines sink therefore
// truncates its file when first used, not when made. A files sink rewrites a redone record's
// file whole (each file is synced before it is renamed into place). The journal is compacted
// when the run ends. A reduce stage, stdin and named pipes cannot be resumed, and are refused.
//
// # Poison records and broken stages
//
// A record that kills every worker that touches it is poison: it fails alone (a worker that
// dies holding several records, without saying which one killed it, has them retried one by
// one), on any worker, while the stage's other records pass; after Stage.Attempts it goes to the
// dead letters. A stage that kills its worker whatever the record (a plugin that crashes at
// start of every record, a Func that always panics) is broken: when 10 distinct records have
// each killed a worker on their first attempt with no record of the stage succeeding in between,
// the stage is declared broken and the run aborts ("stage X is broken: …; last error: …")
// rather than dead-letter the whole input one restart at a time. Any success starts the count
// again, so poison among good records, or workers killed at random, never add up to it. Records
// that use up their attempts killing workers while the stage has shown no success are held back
// until one does (or until the end of input); if the stage is declared broken they are not
// dead-lettered but reported, with everything else read and not finished, in Summary.InFlight.
//
// # How a run ends
//
// Summary.Outcome says it: completed (every record reached the sink or was filtered out),
// dead_letters (the same, but some went to the dead-letter output), interrupted (the context
// was cancelled or Job.Stop called; what was read drained, and Run's error wraps
// context.Canceled), aborted (the tree gave up, a stage was broken, an I/O error, a stop that
// could not drain; Run's error says why).
//
// # Reduce and its map-side combine
//
// A reduce stage is one actor; with a Combine, the workers of the stage before it fold each
// record's outputs per key as soon as the call returns (builtins such as split build them in a
// slice the worker lends, see callctx.Info.Outs), and report, with the results, the partial
// aggregates packed in one pointer-free buffer that travels as one envelope, followed by one
// marker per record carrying its completion weight. The reducer merges the partials (keys are
// looked up in a flat open-addressing index, without an allocation) before the markers reach
// the collector, so a record is complete only once what it produced is in the aggregate. A fold
// that fails sends that results' outputs on one by one (records whose outputs were in the lent
// slice run again), and the reduce stage retries or dead-letters them by its rules.
//
// # Failure of the runtime's own actors
//
// The source's window, the collector's books and a reduce stage's aggregates live in the run,
// not in the actors, so an actor that is restarted keeps them (it learns that it is a restart
// from supervisor.Incarnation). A distributor or collector that restarts asks the source to
// resend its window; duplicates are dropped at the collector, which acks again what it had
// already completed (so lost acks heal too). The actors find one another by the PIDs that the
// supervisor hands over as the tree starts (ChildSpec.OnStart), never by building them from
// names; a PID stays valid across restarts. An END marker follows the
// last record through every stage as a barrier; reduce stages emit their aggregates when it
// arrives.
//
// # Watching a run
//
// Job.Progress gives the figures; Job.Snapshot the tree as well (each stage's and worker's
// state, restarts, last exit, records held and credits left, the pid of a worker's Backend
// when it runs in a process and says so with a Pid() int method, the cluster node it runs on
// when it says so with a Node() string method, the recent dead letters,
// whether the run is ready); Job.Subscribe follows the supervision events, each placed in the
// pipeline (stage, worker, pid); Job.Latency gives a stage's latency histogram. Package admin
// serves them over HTTP; the runtime knows nothing of it.
package actors
