package actors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/troupe-dev/troupe"
)

// The journal file: the magic line, then frames. A frame is its payload's length (uint32,
// little-endian), the payload's CRC-32C (uint32, little-endian) and the payload. The first
// frame is the header ('H', then the source's fingerprint); every other frame is a batch ('B'):
// the positions of the outputs that append (the lines sink, the dead-letter file) after the
// flush that made the batch's records durable, then the batch's entries (an outcome byte and a
// resume key). A frame that is cut short or whose checksum does not match (the run was killed
// while writing it) ends the journal: it and anything after it are ignored, and cut off.
const journalMagic = "troupe-journal 1\n"

const (
	frameHeader = 'H'
	frameBatch  = 'B'

	outcomeDone = 'd' // reached the sink, or was filtered out
	outcomeDead = 'x' // went to the dead letters (some of it, for a split record)

	// journalFrameEntries bounds the entries per frame when the journal is compacted.
	journalFrameEntries = 4096
	// maxFrame bounds a frame's length when reading: a larger length is a torn or foreign frame.
	maxFrame = 1 << 30
)

// crcTable is made on first use: every troupe process (a plugin, the guardian) would
// otherwise build it at start, journal or not.
var crcTable = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// ErrJournalMismatch is wrapped by the error of a run whose journal was written for another
// source (another folder, file or count).
var ErrJournalMismatch = errors.New("belongs to another source")

// outputPos is where an appending output stood after a flush: its name (path) and size.
type outputPos struct {
	name string
	size int64 // -1: unknown
}

// journalEntry is one source record whose outcome is final.
type journalEntry struct {
	key     string
	outcome byte
}

// journal is a run's journal: what earlier runs finished (prior), and a writer that appends
// what this run finishes, in batches, each batch one frame, written and fsynced by a goroutine of
// its own (a batch takes everything that arrived while the previous one was being synced).
type journal struct {
	path  string
	fp    string
	retry bool
	log   *slog.Logger

	f     *os.File
	prior map[string]byte // entries of earlier runs: read-only once open
	// sinkPos and deadPos are where the outputs stood at the last batch of earlier runs.
	sinkPos, deadPos outputPos

	skipMu  sync.Mutex
	skipped map[string]struct{} // prior keys this run skipped (counted once each)
	nSkip   atomic.Int64

	mu         sync.Mutex
	cond       *sync.Cond
	pending    []journalEntry
	pendingPos [2]outputPos // sink, dead letters, as of the last pending batch
	closing    bool
	err        error // the writer's first error; nothing is written after it
	done       chan struct{}
	started    bool
	onError    func(error)
	all        map[string]byte // prior and this run's entries, kept by the writer, for compaction
	lastPos    [2]outputPos    // positions of the last batch written
	compactErr error
}

// openJournal opens (or creates) the journal of cfg for a source with fingerprint fp. It refuses a
// journal written for another source, and one another run holds open; it ignores (and cuts off) a
// torn last frame.
func openJournal(cfg *troupe.Journal, fp string, log *slog.Logger) (*journal, error) {
	if cfg.Path == "" {
		return nil, errors.New("journal: empty path")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := cfg.Path
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return nil, fmt.Errorf("journal %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &journal{path: path, fp: fp, retry: cfg.RetryDeadLetters, log: log, f: f,
		prior: map[string]byte{}, skipped: map[string]struct{}{}, done: make(chan struct{}),
		sinkPos: outputPos{size: -1}, deadPos: outputPos{size: -1}}
	j.cond = sync.NewCond(&j.mu)
	if err := j.open(); err != nil {
		f.Close()
		return nil, err
	}
	// A run killed while it compacted the journal leaves its temporary file: the journal
	// itself is whole (the rename had not happened, or had).
	if stale, err := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".compact-*")); err == nil {
		for _, p := range stale {
			_ = os.Remove(p)
		}
	}
	j.all = maps.Clone(j.prior)
	j.lastPos = [2]outputPos{j.sinkPos, j.deadPos}
	return j, nil
}

func (j *journal) open() error {
	if err := syscall.Flock(int(j.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("journal %s is in use by another run", j.path)
		}
		return fmt.Errorf("journal %s: lock: %w", j.path, err)
	}
	data, err := io.ReadAll(j.f)
	if err != nil {
		return fmt.Errorf("journal %s: read: %w", j.path, err)
	}
	if len(data) < len(journalMagic) && bytes.HasPrefix([]byte(journalMagic), data) {
		return j.create() // empty, or killed while it was being created
	}
	if !bytes.HasPrefix(data, []byte(journalMagic)) {
		return fmt.Errorf("journal %s is not a troupe journal (it does not start with %q); name another file", j.path, journalMagic[:len(journalMagic)-1])
	}
	off := len(journalMagic)
	payload, next, ok := readFrame(data, off)
	if !ok {
		return j.create() // killed while the header was being written: nothing else can follow
	}
	if len(payload) == 0 || payload[0] != frameHeader {
		return fmt.Errorf("journal %s: the first frame is not a header; not a journal this version of troupe wrote", j.path)
	}
	if got := string(payload[1:]); got != j.fp {
		return fmt.Errorf("journal %s %w: it was written for %s, and this run's source is %s (use another journal file, or remove it to start over)", j.path, ErrJournalMismatch, got, j.fp)
	}
	off = next
	for off < len(data) {
		payload, next, ok := readFrame(data, off)
		if !ok {
			j.log.Warn("journal: ignoring a torn last entry (the run that wrote it was killed while writing it)", "journal", j.path, "offset", off, "bytes", len(data)-off)
			if err := j.f.Truncate(int64(off)); err != nil {
				return fmt.Errorf("journal %s: cut off the torn last entry at byte %d: %w", j.path, off, err)
			}
			if err := j.f.Sync(); err != nil {
				return fmt.Errorf("journal %s: sync: %w", j.path, err)
			}
			break
		}
		if err := j.readBatch(payload); err != nil {
			return fmt.Errorf("journal %s: frame at byte %d: %w", j.path, off, err)
		}
		off = next
	}
	if _, err := j.f.Seek(int64(off), io.SeekStart); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// create (re)writes the journal as new: the magic line and the header.
func (j *journal) create() error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	buf := append([]byte(journalMagic), appendFrame(nil, append([]byte{frameHeader}, j.fp...))...)
	if _, err := j.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("journal %s: write header: %w", j.path, err)
	}
	if _, err := j.f.Seek(int64(len(buf)), io.SeekStart); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: sync: %w", j.path, err)
	}
	return syncDir(filepath.Dir(j.path))
}

// readFrame reads the frame at off; ok is unset when it is cut short or its checksum is wrong.
func readFrame(data []byte, off int) (payload []byte, next int, ok bool) {
	if len(data)-off < 8 {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(data[off:])
	sum := binary.LittleEndian.Uint32(data[off+4:])
	if n > maxFrame || uint64(len(data)-off-8) < uint64(n) {
		return nil, 0, false
	}
	payload = data[off+8 : off+8+int(n)]
	if crc32.Checksum(payload, crcTable()) != sum {
		return nil, 0, false
	}
	return payload, off + 8 + int(n), true
}

func appendFrame(buf, payload []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(payload, crcTable()))
	return append(buf, payload...)
}

// encodeBatch is a batch frame's payload.
func encodeBatch(pos [2]outputPos, entries []journalEntry) []byte {
	b := []byte{frameBatch}
	for _, p := range pos {
		b = binary.AppendUvarint(b, uint64(len(p.name)))
		b = append(b, p.name...)
		b = binary.AppendVarint(b, p.size)
	}
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = append(b, e.outcome)
		b = binary.AppendUvarint(b, uint64(len(e.key)))
		b = append(b, e.key...)
	}
	return b
}

// readBatch decodes a batch frame's payload (whose checksum matched) into prior and the positions.
func (j *journal) readBatch(p []byte) error {
	if len(p) == 0 || p[0] != frameBatch {
		return errors.New("not a batch")
	}
	p = p[1:]
	bad := errors.New("malformed batch")
	str := func() (string, bool) {
		n, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) < n {
			return "", false
		}
		s := string(p[k : k+int(n)])
		p = p[k+int(n):]
		return s, true
	}
	var pos [2]outputPos
	for i := range pos {
		name, ok := str()
		if !ok {
			return bad
		}
		size, k := binary.Varint(p)
		if k <= 0 {
			return bad
		}
		p = p[k:]
		pos[i] = outputPos{name, size}
	}
	n, k := binary.Uvarint(p)
	if k <= 0 {
		return bad
	}
	p = p[k:]
	for range n {
		if len(p) == 0 {
			return bad
		}
		outcome := p[0]
		p = p[1:]
		key, ok := str()
		if !ok || (outcome != outcomeDone && outcome != outcomeDead) {
			return bad
		}
		j.prior[key] = outcome
	}
	j.sinkPos, j.deadPos = pos[0], pos[1]
	return nil
}

// isDone says whether the record with the resume key was finished by an earlier run, and counts
// it skipped (once). A dead letter counts as done unless the journal retries dead letters.
func (j *journal) isDone(key string) bool {
	o, ok := j.prior[key]
	if !ok || (o == outcomeDead && j.retry) {
		return false
	}
	j.skipMu.Lock()
	if _, dup := j.skipped[key]; !dup {
		j.skipped[key] = struct{}{}
		j.nSkip.Add(1)
	}
	j.skipMu.Unlock()
	return true
}

// start starts the writer; onError is called (once) if writing fails.
func (j *journal) start(onError func(error)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.onError = onError
	j.started = true
	go j.writer()
}

// add queues entries whose records the outputs hold durably, with the outputs' positions then.
// It never blocks.
func (j *journal) add(entries []journalEntry, sink, dead outputPos) {
	if len(entries) == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil || j.closing {
		return
	}
	j.pending = append(j.pending, entries...)
	j.pendingPos = [2]outputPos{sink, dead}
	j.cond.Signal()
}

func (j *journal) writer() {
	defer close(j.done)
	for {
		j.mu.Lock()
		for len(j.pending) == 0 && !j.closing {
			j.cond.Wait()
		}
		if len(j.pending) == 0 {
			j.mu.Unlock()
			return
		}
		entries, pos := j.pending, j.pendingPos
		j.pending = nil
		j.mu.Unlock()
		frame := appendFrame(nil, encodeBatch(pos, entries))
		err := j.write(frame)
		if err != nil {
			err = fmt.Errorf("journal %s: %w", j.path, err)
			j.mu.Lock()
			j.err = err
			j.pending = nil
			onError := j.onError
			j.mu.Unlock()
			if onError != nil {
				onError(err)
			}
			return
		}
		for _, e := range entries {
			j.all[e.key] = e.outcome
		}
		j.lastPos = pos
	}
}

// write appends one frame and fsyncs the journal.
func (j *journal) write(frame []byte) error {
	if testHookWanted("journal-torn") && testHookHit("journal-torn") {
		// Test only: leave half a frame on disk, as a kill in the middle of the write would.
		if _, err := j.f.Write(frame[:len(frame)/2]); err == nil {
			_ = j.f.Sync()
		}
		testHookStall("journal-torn")
	}
	if _, err := j.f.Write(frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// skippedCount is how many records this run skipped as done.
func (j *journal) skippedCount() int64 { return j.nSkip.Load() }

// close writes what is queued, compacts the journal (one entry per record, the outcome last
// written) if compact is set and everything was written, and closes it.
func (j *journal) close(compact bool) error {
	j.mu.Lock()
	j.closing = true
	started := j.started
	j.cond.Signal()
	j.mu.Unlock()
	if started {
		<-j.done
	}
	j.mu.Lock()
	err := j.err
	j.mu.Unlock()
	if err == nil && compact {
		if cerr := j.compact(); cerr != nil {
			j.log.Warn("journal: compaction failed; the journal is kept as it was", "journal", j.path, "error", cerr)
		}
	}
	if cerr := j.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("journal %s: close: %w", j.path, cerr)
	}
	return err
}

// compact rewrites the journal with one entry per record into a temporary file, and renames it
// over the journal: the file is either the old journal or the new one, whole.
func (j *journal) compact() error {
	dir := filepath.Dir(j.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(j.path)+".compact-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is left to remove
	buf := append([]byte(journalMagic), appendFrame(nil, append([]byte{frameHeader}, j.fp...))...)
	keys := slices.Sorted(maps.Keys(j.all))
	for len(keys) > 0 {
		n := min(len(keys), journalFrameEntries)
		entries := make([]journalEntry, n)
		for i, k := range keys[:n] {
			entries[i] = journalEntry{key: k, outcome: j.all[k]}
		}
		keys = keys[n:]
		buf = appendFrame(buf, encodeBatch(j.lastPos, entries))
	}
	if len(j.all) == 0 {
		buf = appendFrame(buf, encodeBatch(j.lastPos, nil))
	}
	if _, err := tmp.Write(buf); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), j.path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, so that a file created or renamed in it stays.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// appendOutput is implemented by the built-in outputs that append to one file (the lines sink,
// the JSONL dead letters). A journal records where they stood after each batch it names, and a
// resumed run cuts them back there before it appends: what the killed run wrote after its last
// journalled batch belongs to records the resumed run does again.
type appendOutput interface {
	// outputName is the file's absolute path, or "" when it cannot be cut back (standard
	// output, a pipe).
	outputName() string
	// syncPos makes what Flush wrote durable and returns the file's size.
	syncPos() (int64, error)
	// resumeAt makes the output keep the file's first size bytes and append after them (rather
	// than truncate it); called before anything is written. It refuses a file shorter than size.
	resumeAt(size int64) error
}

// syncPos makes an appending output's flushed content durable and returns where it stands; an
// output that is not one has no position.
func syncPos(o any) (outputPos, error) {
	ao, ok := o.(appendOutput)
	if !ok || ao.outputName() == "" {
		return outputPos{size: -1}, nil
	}
	n, err := ao.syncPos()
	return outputPos{name: ao.outputName(), size: n}, err
}

// resumeOutput cuts an appending output back to where the journal says it stood, if the journal
// names this output's file.
func resumeOutput(o any, at outputPos, what string, log *slog.Logger) error {
	ao, ok := o.(appendOutput)
	if !ok || ao.outputName() == "" || at.size < 0 {
		return nil
	}
	if at.name != ao.outputName() {
		log.Warn("journal: the output is not the file the journal recorded; it is written as for a new run", "output", what, "file", ao.outputName(), "journal_file", at.name)
		return nil
	}
	return ao.resumeAt(at.size)
}
