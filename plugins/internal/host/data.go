package host

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/ipc"
)

// The data channel: records go to the plugin in batch frames, results and credit come back.
// What comes back is checked against what was sent (verify.go) before the runtime sees it.

// Submit queues tasks for the plugin. It never blocks on the plugin: a writer goroutine sends
// them. A record that cannot fit in a frame fails the submission. After the backend has failed,
// Submit returns the error Fail reports.
//
// On the wire a record's seq is the host's own number for it (this backend's count of the
// records it was given), which verify checks the plugin's outputs against; sub, weight and flag
// are 0.
func (b *Backend) Submit(tasks []troupe.Task) error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.wclosed {
		if b.failErr != nil {
			return b.failErr // what Outcomes.Fail reports (or has reported)
		}
		return errors.New("plugin backend is closed")
	}
	limit := b.maxFrame - 32
	for start := 0; start < len(tasks); {
		size, end := 0, start
		for end < len(tasks) {
			s := ipc.TaskRecordSize(&tasks[end], b.nextSeq+uint64(end-start)+1) + 1
			if s > limit {
				return fmt.Errorf("record key=%q takes %d bytes, over the plugin's max frame of %d bytes",
					tasks[end].Record.Key, s, b.maxFrame)
			}
			if size+s > limit {
				break
			}
			size += s
			end++
		}
		b.batchID++
		var err error
		if b.wbuf, err = ipc.AppendTaskBatchSized(b.wbuf, b.maxFrame, b.batchID, b.nextSeq+1, tasks[start:end], size-(end-start)); err != nil {
			return err
		}
		b.smu.Lock()
		b.sent.push(b.nextSeq+1, tasks[start:end])
		b.smu.Unlock()
		b.nextSeq += uint64(end - start)
		start = end
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

func (b *Backend) writeLoop() {
	defer b.wg.Done()
	var spare []byte
	for {
		select {
		case <-b.wake:
		case <-b.stop:
			return
		case <-b.failed:
			return
		}
		b.wmu.Lock()
		buf := b.wbuf
		b.wbuf = spare[:0]
		b.wmu.Unlock()
		if len(buf) == 0 {
			spare = buf
			continue
		}
		if _, err := b.conn.Write(buf); err != nil {
			if !b.closing.Load() {
				go b.fail(fmt.Errorf("writing to the plugin: %w", err), true)
			}
			return
		}
		if cap(buf) > 8<<20 {
			buf = nil
		}
		spare = buf
	}
}

func (b *Backend) readLoop() {
	defer b.wg.Done()
	r := ipc.NewFrameReader(b.conn, b.maxFrame)
	var rv ipc.ResultsView
	for {
		f, err := r.NextView(&rv)
		if err != nil {
			if b.closing.Load() {
				return
			}
			switch {
			case errors.Is(err, ipc.ErrMalformedFrame) || errors.Is(err, ipc.ErrFrameTooLarge):
				b.fail(protocolErrorf("%v", err), false)
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
				b.fail(errors.New("the plugin closed its data connection"), true)
			default:
				b.fail(fmt.Errorf("data connection: %w", err), true)
			}
			return
		}
		switch f.Type {
		case ipc.FrameResults:
			if err := b.verify(&rv); err != nil {
				b.fail(err, false)
				return
			}
			b.out.Results(results(&rv))
		case ipc.FrameCredit:
			if f.Credit > 0 {
				b.out.Grant(int(f.Credit))
			}
		case ipc.FrameBatch:
			b.fail(protocolErrorf("the plugin sent a batch frame"), false)
			return
		}
	}
}
