package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/troupe-dev/troupe"
)

// filesSource produces one record per file of a directory listing made at construction.
type filesSource struct {
	dir       string // absolute
	glob      string
	recursive bool
	total     int64

	mu     sync.Mutex
	files  []listedFile
	next   int           // index of the next file to read
	unread map[int]error // records of the last Read (by index) for files that are no longer regular files
	closed bool
	// ids holds, once Resume was called, the resume keys of the last Read's records, by key.
	ids map[string]string
}

// listedFile is one file found when listing a files source's directory.
type listedFile struct {
	key string // path relative to dir, forward slashes
	abs string // absolute path
}

// NewFilesSource returns a Source with one record per regular file under dir whose base name
// matches glob (filepath.Match syntax; "" means "*"). With recursive set it descends into
// subdirectories (symbolic links to directories are not followed, which rules out cycles); a
// symbolic link to a regular file counts as that file.
//
// The directory is listed once, here; records come in order of their relative path, so runs
// over the same tree are deterministic. A record's key is its path relative to dir with forward
// slashes, its payload the file's bytes (read when the record is read, not when listed), and
// its metadata "path" (the absolute path) and "size" (the payload's length in bytes, decimal).
// The source implements Sized: Total is the number of files listed. It implements
// troupe.Resumable: a file is named by its relative path, size and modification time.
//
// A bad pattern, a dir that does not exist or is not a directory, an unreadable subdirectory
// and a dangling symbolic link that matches glob are errors here. A file that vanishes or
// cannot be read after listing makes Read fail with an error naming the file; the file is not
// skipped, and a later Read tries it again. A listed file that is no longer a regular file
// when it is read (a directory or a named pipe put in its place) is bad input for its record,
// not a failure of the source: files are opened without blocking and checked once open, so
// such a file is never read or waited on; Read returns its record without a payload (and with
// the metadata "path" only), and a run sends it to the dead letters with the reason, as stage
// "source".
func NewFilesSource(dir, glob string, recursive bool) (troupe.Source, error) {
	if glob == "" {
		glob = "*"
	}
	if _, err := filepath.Match(glob, ""); err != nil {
		return nil, fmt.Errorf("files source: bad pattern %q: %w", glob, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("files source: directory %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("files source: directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("files source: %s is not a directory", dir)
	}
	files, err := listFiles(abs, glob, recursive)
	if err != nil {
		return nil, err
	}
	return &filesSource{dir: abs, glob: glob, recursive: recursive, total: int64(len(files)), files: files}, nil
}

// listFiles lists the files of a files source under the absolute directory dir, sorted by
// relative path.
func listFiles(dir, glob string, recursive bool) ([]listedFile, error) {
	// Walk the resolved directory (WalkDir would not enter a root that is a symbolic link), but
	// report paths under dir as the caller spelled it.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("files source: directory %s: %w", dir, err)
	}
	var files []listedFile
	walk := func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("files source: list %s: %w", p, err)
		}
		if d.IsDir() {
			if p != root && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		ok, err := filepath.Match(glob, d.Name())
		if err != nil { // checked in NewFilesSource; kept for safety
			return fmt.Errorf("files source: bad pattern %q: %w", glob, err)
		}
		if !ok {
			return nil
		}
		mode := d.Type()
		if mode&fs.ModeSymlink != 0 {
			st, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("files source: symbolic link %s: %w", p, err)
			}
			mode = st.Mode().Type()
		}
		if !mode.IsRegular() {
			return nil // sockets, devices, pipes and linked directories are not files to read
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("files source: %s: %w", p, err)
		}
		files = append(files, listedFile{key: filepath.ToSlash(rel), abs: filepath.Join(dir, rel)})
		return nil
	}
	if err := filepath.WalkDir(root, walk); err != nil {
		return nil, err
	}
	// WalkDir orders entries per directory; sort whole relative paths so that the order does not
	// depend on how names compare with the separator ("a-b" sorts before "a/b").
	slices.SortFunc(files, func(a, b listedFile) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	return files, nil
}

// Read returns the next up to max files' records. It returns io.EOF together with the last
// batch. If a file cannot be read, Read returns the records read before it with a nil error,
// and the next call returns the error (naming the file) and no records; the failing file stays
// next, so a later Read retries it.
func (s *filesSource) Read(ctx context.Context, max int) ([]troupe.Record, error) {
	if max <= 0 {
		return nil, fmt.Errorf("files source %s: read: max must be positive, got %d", s.dir, max)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("files source %s: read after close", s.dir)
	}
	n := min(max, len(s.files)-s.next)
	if n == 0 {
		return nil, io.EOF
	}
	clear(s.unread)
	clear(s.ids)
	out := make([]troupe.Record, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			if len(out) > 0 {
				return out, nil
			}
			return nil, err
		}
		f := s.files[s.next]
		data, st, err := readRegular(f.abs)
		if errors.Is(err, errNotRegular) {
			if s.unread == nil {
				s.unread = map[int]error{}
			}
			s.unread[len(out)] = fmt.Errorf("files source: read %s: %w", f.key, err)
			out = append(out, troupe.Record{Key: f.key, Meta: map[string]string{"path": f.abs}})
			s.next++
			continue
		}
		if err != nil {
			if len(out) > 0 {
				return out, nil
			}
			return nil, fmt.Errorf("files source: read %s: %w", f.key, err)
		}
		out = append(out, troupe.Record{Key: f.key, Payload: data, Meta: map[string]string{"path": f.abs, "size": strconv.Itoa(len(data))}})
		if s.ids != nil {
			s.ids[f.key] = fileResumeKey(f.key, st)
		}
		s.next++
	}
	if s.next == len(s.files) {
		return out, io.EOF
	}
	return out, nil
}

// errNotRegular reports a listed path that is no longer a regular file.
var errNotRegular = errors.New("not a regular file")

// readRegular reads a whole file, refusing anything that is not (or no longer) a regular file,
// such as a directory or a named pipe put in its place after listing. It opens the file
// without blocking (opening a named pipe blocks until a writer comes) and checks what it opened,
// so that no swap after listing can make it wait on a pipe or device.
func readRegular(p string) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w (%s)", p, errNotRegular, fileKind(st.Mode()))
	}
	// Size the buffer from Stat but read to EOF: the file may have grown or shrunk since.
	size := st.Size()
	if size < 0 || int64(int(size)) != size {
		size = 0
	}
	buf := make([]byte, 0, int(size)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, st, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// fileKind names the type of a file that is not a regular file.
func fileKind(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// unreadable returns (and forgets) why record i of the batch Read just returned could not be
// read, or nil.
func (s *filesSource) unreadable(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.unread[i]
	delete(s.unread, i)
	return err
}

// fileResumeKey names a file of a files source across runs: its relative path, size and
// modification time, so that a file changed since a run finished it is done again.
func fileResumeKey(key string, st fs.FileInfo) string {
	return key + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
}

// Fingerprint describes the source: its directory, pattern and recursion.
func (s *filesSource) Fingerprint() string {
	fp := fmt.Sprintf("files of %s matching %q", s.dir, s.glob)
	if s.recursive {
		fp += " (recursive)"
	}
	return fp
}

// Resume drops from the listing the files done says are done, by their relative path, size and
// modification time (a file whose size or time changed since is read again). A file that can no
// longer be looked at stays, for Read to report.
func (s *filesSource) Resume(done func(key string) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next != 0 {
		return fmt.Errorf("files source %s: resume after the first read", s.dir)
	}
	kept := s.files[:0]
	for _, f := range s.files {
		st, err := os.Stat(f.abs)
		switch {
		case err != nil:
		case st.Mode().IsRegular() && done(fileResumeKey(f.key, st)):
			continue
		case !st.Mode().IsRegular() && done(f.key):
			continue // no longer a regular file: a dead letter named by its path (see ResumeKey)
		}
		kept = append(kept, f)
	}
	clear(s.files[len(kept):])
	s.files = kept
	s.ids = map[string]string{}
	return nil
}

// ResumeKey returns the resume key of a record the last Read returned: its relative path, size
// and modification time when read. A record whose file could not be read is named by its path.
func (s *filesSource) ResumeKey(rec troupe.Record) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.ids[rec.Key]; ok {
		return id
	}
	return rec.Key
}

// Total returns the number of files listed.
func (s *filesSource) Total() (int64, bool) {
	return s.total, true
}

// Close releases the listing. It holds no open files between reads, so it cannot fail; calling
// it again does nothing.
func (s *filesSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.files = nil
	return nil
}

// sizeHint is the size of the first file to read (one stat), or 0.
func (s *filesSource) sizeHint() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= len(s.files) {
		return 0
	}
	f := s.files[s.next]
	st, err := os.Stat(f.abs)
	if err != nil || !st.Mode().IsRegular() || st.Size() > math.MaxInt32 {
		return 0
	}
	return len(f.key) + int(st.Size())
}
