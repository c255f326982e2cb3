package actors

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/troupe-dev/troupe"
)

// filesSink writes each record to its own file under a directory.
type filesSink struct {
	dir string // absolute
	ext string // "" or starting with "."

	mu     sync.Mutex
	root   *os.Root            // confines every operation to dir, symbolic links included
	made   map[string]bool     // subdirectories known to exist (relative to dir)
	dirs   map[string]struct{} // directories whose entries changed since the last Flush
	closed bool
}

// NewFilesSink returns a Sink that writes each record's payload to its own file under dir,
// creating dir if needed. The file's path is the record's key, a relative path with forward
// slashes (as NewFilesSource makes them), with its extension replaced by ext; an ext without a
// leading dot gets one, and "" keeps the key's name as it is. Subdirectories named by keys are
// created. A key that is empty, absolute, or leads outside dir (through "..", or through a
// symbolic link under dir) is refused with an error naming the key.
//
// Each file is written to a temporary file in its target directory and renamed into place, so
// an output is either absent, its previous version, or complete: a crash never leaves a
// half-written output, and no temporary file survives a Write or Close that returns. Two
// records with the same output name (say "a.txt" and "a.csv" with ext ".json") overwrite each
// other; the one written last wins.
//
// A run that was killed may leave the temporary files it was writing behind; NewFilesSink
// removes those under dir (regular files named as the sink names them, ".troupe-<base 36
// number>.tmp", and nothing else). Two sinks must not write into the same directory at once.
//
// Each file's content is synced before it is renamed into place, and Flush syncs the
// directories whose entries changed since the previous Flush: a file counted as out is on disk,
// name and content. Close flushes and releases the directory.
func NewFilesSink(dir, ext string) (troupe.Sink, error) {
	if dir == "" {
		return nil, errors.New("files sink: empty directory name")
	}
	if ext != "" && !strings.HasPrefix(ext, ".") {
		ext = "." + ext
	}
	if ext == "." || strings.ContainsAny(ext, "/\x00"+string(filepath.Separator)) {
		return nil, fmt.Errorf("files sink %s: bad extension %q", dir, ext)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("files sink %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o777); err != nil {
		return nil, fmt.Errorf("files sink: create directory: %w", err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("files sink: %w", err)
	}
	if err := removeStaleTemps(root); err != nil {
		root.Close()
		return nil, fmt.Errorf("files sink %s: %w", abs, err)
	}
	return &filesSink{
		dir:  abs,
		ext:  ext,
		root: root,
		made: map[string]bool{".": true},
		dirs: map[string]struct{}{},
	}, nil
}

// outputName maps a key to the output file's path relative to the sink's directory.
func (s *filesSink) outputName(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("files sink %s: key %q is empty", s.dir, key)
	}
	if strings.IndexByte(key, 0) >= 0 {
		return "", fmt.Errorf("files sink %s: key %q contains a NUL byte", s.dir, key)
	}
	name := filepath.FromSlash(key)
	if !filepath.IsLocal(name) {
		return "", fmt.Errorf("files sink %s: key %q is not a relative path inside the directory", s.dir, key)
	}
	name = filepath.Clean(name)
	if name == "." {
		return "", fmt.Errorf("files sink %s: key %q names the directory itself, not a file", s.dir, key)
	}
	if s.ext != "" {
		name = name[:len(name)-len(extOf(filepath.Base(name)))] + s.ext
	}
	return name, nil
}

// extOf returns the extension of a base name: from its last dot on, unless that dot is the first
// character (".profile" has no extension).
func extOf(base string) string {
	i := strings.LastIndexByte(base, '.')
	if i <= 0 {
		return ""
	}
	return base[i:]
}

// Write stores rec's payload in the file its key names, replacing any file of that name.
func (s *filesSink) Write(rec troupe.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("files sink %s: write after close", s.dir)
	}
	name, err := s.outputName(rec.Key)
	if err != nil {
		return err
	}
	target := filepath.Join(s.dir, name)
	parent := filepath.Dir(name)
	if !s.made[parent] {
		if err := s.mkdir(rec.Key, parent); err != nil {
			return err
		}
	}
	tmp, f, err := s.createTemp(parent)
	if errors.Is(err, fs.ErrNotExist) && parent != "." {
		// The directory was removed behind the sink's back since it was made: make it again.
		if err := s.mkdir(rec.Key, parent); err != nil {
			return err
		}
		tmp, f, err = s.createTemp(parent)
	}
	if err != nil {
		return fmt.Errorf("files sink: key %q: create temporary file in %s: %w", rec.Key, filepath.Join(s.dir, parent), err)
	}
	_, err = f.Write(rec.Payload)
	if err == nil {
		// The content reaches the disk before the name does: renamed unsynced, a crash could
		// leave the output in place but empty or short (file fsync, rename, then the
		// directory's fsync at Flush).
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, name)
	}
	if err != nil {
		if rerr := s.root.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove temporary file: %w", rerr))
		}
		return fmt.Errorf("files sink: key %q: write %s: %w", rec.Key, target, err)
	}
	s.dirs[parent] = struct{}{}
	return nil
}

// mkdir creates the directory parent (relative to the sink's directory) and its parents.
func (s *filesSink) mkdir(key, parent string) error {
	if err := s.root.MkdirAll(parent, 0o777); err != nil {
		return fmt.Errorf("files sink: key %q: create directory %s: %w", key, filepath.Join(s.dir, parent), err)
	}
	// The new directories' own entries must reach the disk too.
	for d := parent; d != "."; d = filepath.Dir(d) {
		s.made[d] = true
		s.dirs[filepath.Dir(d)] = struct{}{}
	}
	return nil
}

// isTempName reports whether a base name is one createTemp makes: ".troupe-" followed by a
// base 36 uint64 and ".tmp".
func isTempName(name string) bool {
	digits, ok := strings.CutPrefix(name, ".troupe-")
	if !ok {
		return false
	}
	digits, ok = strings.CutSuffix(digits, ".tmp")
	if !ok || digits == "" || len(digits) > 13 {
		return false
	}
	for _, c := range digits {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	_, err := strconv.ParseUint(digits, 36, 64)
	return err == nil
}

// removeStaleTemps removes the temporary files a killed run left under the sink's directory.
// It does not follow symbolic links.
func removeStaleTemps(root *os.Root) error {
	return fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return fmt.Errorf("look for stale temporary files: %w", err)
			}
			return nil // a subdirectory that cannot be read, or was removed meanwhile
		}
		if !d.Type().IsRegular() || !isTempName(d.Name()) {
			return nil
		}
		if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale temporary file: %w", err)
		}
		return nil
	})
}

// createTemp creates a new, empty temporary file in the directory parent (relative to the
// sink's directory), named ".troupe-<random>.tmp".
func (s *filesSink) createTemp(parent string) (string, *os.File, error) {
	for range 100 {
		tmp := filepath.Join(parent, ".troupe-"+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
		f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return tmp, f, err
	}
	return "", nil, errors.New("no unused temporary file name after 100 tries")
}

// Flush syncs the directories whose entries changed since the previous Flush (the files
// themselves were synced before they were renamed). What fails stays pending, so a later Flush retries it. A file or directory that
// someone else removed after the sink wrote it is no longer the sink's to sync, and is passed
// over.
func (s *filesSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("files sink %s: flush after close", s.dir)
	}
	return s.flush()
}

func (s *filesSink) flush() error {
	// Each file was synced before it was renamed into place (see Write); what remains is the
	// directories' entries.
	for _, d := range slices.Sorted(maps.Keys(s.dirs)) {
		if err := s.syncPath(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("files sink: flush directory %s: %w", filepath.Join(s.dir, d), err)
		}
		delete(s.dirs, d)
	}
	return nil
}

// syncPath fsyncs a file or directory under the sink's directory.
func (s *filesSink) syncPath(name string) error {
	f, err := s.root.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close flushes and releases the directory. Calling it again does nothing.
func (s *filesSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.flush()
	if cerr := s.root.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("files sink: close %s: %w", s.dir, cerr))
	}
	return err
}
