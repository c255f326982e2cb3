package spec

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Check checks what Pipeline will need from the outside world, without creating, writing or
// starting anything (it reads: stats paths, opens the source to see that it can be read, hashes
// a plugin program whose sha256 is set), and reports every problem at once, each at its place
// in the spec, in a *SpecError:
//
//   - each plugin stage's program exists and is executable (a program without a slash is looked
//     up in $PATH, one with a slash was resolved against the spec's directory) and, when the
//     stage sets sha256, has that sum;
//   - a lines source's file exists and is not a directory (a regular file must be readable);
//     a files source's dir exists and is a readable directory;
//   - the sink and the dead-letter file can be created: a run creates the missing parent
//     directories of a lines sink and a dead-letter file and a files sink's dir itself, so
//     what exists of such a path must be directories, writable where the run creates
//     something, and an existing lines sink or dead-letter file a writable non-directory;
//   - no output overlaps an input or another output: no sink or dead-letter file is the
//     source's file or the other output's, or a file a files source would list (by its path,
//     or linked into the source's dir), or a file a files sink's outputs could overwrite; a
//     files sink's dir is not the files source's, does not contain it and does not lie inside
//     it when the source is recursive. The same file reached through symbolic links, ".." or a
//     hard link counts as the same; standard streams and devices never overlap.
//
// Pipeline runs Check before it opens anything, and `troupe validate` runs it, so that what
// validates is what runs. A problem in the world may still appear between Check and the run (a
// file removed meanwhile); Pipeline reports that as it opens.
func (s *Spec) Check() error {
	var errs errorList
	for i := range s.Stages {
		st := &s.Stages[i]
		if st.Plugin == nil {
			continue
		}
		if err := st.PluginConfig().Check(); err != nil {
			errs.wrap(s.pos(st.At, "plugin"), err, "stage %s: %v", st.Name, err)
		}
	}
	switch src := s.Source; {
	case src.Lines != nil && src.Lines.Path != "-":
		at := s.pos(src.Lines.At, "path")
		if err := checkReadableFile(src.Lines.Path); err != nil {
			errs.wrap(at, err, "source.lines.path %s: %v", src.Lines.Path, err)
		}
	case src.Files != nil:
		at := s.pos(src.Files.At, "dir")
		if err := checkReadableDir(src.Files.Dir); err != nil {
			errs.wrap(at, err, "source.files.dir %s: %v", src.Files.Dir, err)
		}
	}
	switch sk := s.Sink; {
	case sk.Lines != nil && sk.Lines.Path != "-":
		if err := checkCreatable(sk.Lines.Path, false); err != nil {
			errs.wrap(s.pos(sk.Lines.At, "path"), err, "sink.lines.path %s: %v", sk.Lines.Path, err)
		}
	case sk.Files != nil:
		if err := checkCreatable(sk.Files.Dir, true); err != nil {
			errs.wrap(s.pos(sk.Files.At, "dir"), err, "sink.files.dir %s: %v", sk.Files.Dir, err)
		}
	}
	if dl := s.DeadLetter; dl != nil {
		if err := checkCreatable(dl.Path, false); err != nil {
			errs.wrap(s.pos(dl.At, "path"), err, "dead_letter.path %s: %v", dl.Path, err)
		}
	}
	if j := s.Journal; j != nil {
		if err := checkCreatable(j.Path, false); err != nil {
			errs.wrap(s.pos(j.At, "path"), err, "journal.path %s: %v", j.Path, err)
		}
	}
	s.checkOverlaps(&errs)
	return errs.err()
}

// checkReadableFile checks that a lines source's file exists, is not a directory and, when it
// is a regular file, can be opened for reading. Other files (a named pipe, /dev/stdin) are not
// opened: opening a pipe would wait for its writer.
func checkReadableFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file")
	case err != nil:
		return err
	case fi.IsDir():
		return errors.New("is a directory, not a file")
	case fi.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("cannot be read: %w", err)
		}
		return f.Close()
	}
	return nil
}

// checkReadableDir checks that a files source's dir exists, is a directory and can be listed.
func checkReadableDir(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such directory")
	case err != nil:
		return err
	case !fi.IsDir():
		return errors.New("is not a directory")
	}
	f, err := os.Open(path)
	if err == nil {
		_, err = f.Readdirnames(1)
		f.Close()
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("cannot be listed: %w", err)
	}
	return nil
}

// checkCreatable checks that a run can open path for writing (dir false: a file, created with
// its missing parent directories) or use it as an output directory (dir true: created with its
// parents when missing).
func checkCreatable(path string, dir bool) error {
	fi, err := os.Stat(path)
	if err == nil {
		switch {
		case dir && !fi.IsDir():
			return errors.New("exists and is not a directory")
		case !dir && fi.IsDir():
			return errors.New("is a directory, not a file")
		}
		mode := uint32(unix.W_OK)
		if dir {
			mode |= unix.X_OK
		}
		if err := unix.Access(path, mode); err != nil {
			return fmt.Errorf("not writable: %w", err)
		}
		return nil
	}
	if !missing(err) {
		return err
	}
	// The run creates what is missing: the nearest existing ancestor must be a directory it
	// can create entries in.
	for a := filepath.Dir(path); ; a = filepath.Dir(a) {
		fi, err := os.Stat(a)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("cannot be created: %s is not a directory", a)
		case err == nil:
			if err := unix.Access(a, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("cannot be created: directory %s is not writable: %w", a, err)
			}
			return nil
		case !missing(err):
			return fmt.Errorf("cannot be created: %w", err)
		}
		if a == filepath.Dir(a) {
			return nil
		}
	}
}

// missing reports whether a Stat error means the path does not exist (possibly because one of
// its parents is a file).
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR)
}

// endpoint is a file or directory a pipeline reads or writes, for the overlap checks.
type endpoint struct {
	key       string // the spec's key, "sink.lines.path"
	pos       Pos
	path      string // as the run opens it
	dir       bool   // a directory of files (a files source or sink)
	input     bool
	glob      string // of a files source
	recursive bool   // of a files source
	ext       string // of a files sink, with its dot; "" keeps names

	real string      // path with symbolic links resolved, through its parents when missing
	fi   os.FileInfo // nil when the path does not exist
}

// checkOverlaps refuses outputs that would write over an input or over each other, or that an
// input would read back: a sink or dead-letter file that is the source's file or the other
// output's; a file output that a files source would list (in its dir, or below it when
// recursive, and matching its glob, or linked there under another name); an input or output
// file that a files sink could overwrite (under its dir and, when the sink sets ext, ending in
// it); a files sink dir that is, contains or (for a recursive source) lies inside the files
// source's dir. A files sink dir inside a non-recursive source's dir is fine: the source does
// not descend into it.
//
// Standard streams ("-", /dev/stdout, /dev/fd/N, ...) and existing files that are neither
// regular files nor directories (devices, pipes, sockets) never overlap: writing one does not
// destroy what another reads, and whether /dev/stdout meets a file depends on how a run is
// started, not on the spec.
func (s *Spec) checkOverlaps(errs *errorList) {
	var eps []*endpoint
	add := func(e *endpoint) {
		if e.path == "" || isStream(e.path) {
			return
		}
		if fi, err := os.Stat(e.path); err == nil {
			if !fi.Mode().IsRegular() && !fi.IsDir() {
				return
			}
			e.fi = fi
		}
		e.real = resolvePath(e.path, 0)
		eps = append(eps, e)
	}
	switch src := s.Source; {
	case src.Lines != nil:
		add(&endpoint{key: "source.lines.path", pos: s.pos(src.Lines.At, "path"), path: src.Lines.Path, input: true})
	case src.Files != nil:
		add(&endpoint{key: "source.files.dir", pos: s.pos(src.Files.At, "dir"), path: src.Files.Dir, input: true,
			dir: true, glob: cmp.Or(src.Files.Glob, "*"), recursive: src.Files.Recursive})
	}
	switch sk := s.Sink; {
	case sk.Lines != nil:
		add(&endpoint{key: "sink.lines.path", pos: s.pos(sk.Lines.At, "path"), path: sk.Lines.Path})
	case sk.Files != nil:
		ext := sk.Files.Ext
		if ext != "" && !strings.HasPrefix(ext, ".") {
			ext = "." + ext
		}
		add(&endpoint{key: "sink.files.dir", pos: s.pos(sk.Files.At, "dir"), path: sk.Files.Dir, dir: true, ext: ext})
	}
	if dl := s.DeadLetter; dl != nil {
		add(&endpoint{key: "dead_letter.path", pos: s.pos(dl.At, "path"), path: dl.Path})
	}
	if j := s.Journal; j != nil {
		add(&endpoint{key: "journal.path", pos: s.pos(j.At, "path"), path: j.Path})
	}
	// Inputs come first, so b is always an output.
	var linked []*endpoint // existing output files not yet found to overlap a files source
	for j, b := range eps {
		found := false
		for _, a := range eps[:j] {
			if msg := overlap(a, b); msg != "" {
				errs.add(b.pos, "%s %s %s", b.key, b.path, msg)
				found = found || a.input
			}
		}
		if !found && !b.dir && b.fi != nil {
			linked = append(linked, b)
		}
	}
	if len(eps) > 0 && eps[0].input && eps[0].dir && eps[0].fi != nil && len(linked) > 0 {
		listedOutputs(errs, eps[0], linked)
	}
}

// listedOutputs reports the output files that the files source src would list under another
// name: through a symbolic link or a hard link in its dir. It lists the dir as the source does
// (glob, recursive; symbolic links to files followed, to directories not).
func listedOutputs(errs *errorList, src *endpoint, outs []*endpoint) {
	reported := map[*endpoint]bool{}
	_ = filepath.WalkDir(src.real, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil // the run reports what it cannot list
		case d.IsDir():
			if p != src.real && !src.recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if ok, _ := filepath.Match(src.glob, d.Name()); !ok {
			return nil
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		for _, o := range outs {
			if !reported[o] && os.SameFile(fi, o.fi) {
				reported[o] = true
				errs.add(o.pos, "%s %s is %s, which %s (%s) lists as an input: the output would be read back as input",
					o.key, o.path, p, src.key, src.pos)
			}
		}
		return nil
	})
}

// overlap says how the output b overlaps a, an input or an earlier output, or returns "".
func overlap(a, b *endpoint) string {
	other := fmt.Sprintf("%s (%s)", a.key, a.pos)
	if samePath(a, b) {
		switch {
		case a.dir && b.dir:
			return "is the same directory as " + other + ": outputs would overwrite the inputs or mix with them"
		case a.dir != b.dir:
			return "is the same path as " + other
		case a.input:
			return "is the same file as " + other + ": the run would write over its own input"
		default:
			return "is the same file as " + other + ": the two outputs would overwrite each other"
		}
	}
	switch {
	case a.dir && a.input && !b.dir:
		// An output file that the files source would list.
		if depth := within(b, a); depth == 1 || depth > 1 && a.recursive {
			if ok, _ := filepath.Match(a.glob, filepath.Base(b.real)); ok {
				return fmt.Sprintf("lies in %s and matches its glob %q: the output would be read back as input", other, a.glob)
			}
		}
	case a.dir && a.input && b.dir:
		if within(a, b) > 0 {
			return "contains " + other + ": outputs could overwrite the inputs"
		}
		if within(b, a) > 0 && a.recursive {
			return "lies inside " + other + ", which is read recursively: outputs would be read back as inputs"
		}
	case a.dir && !b.dir:
		// An output file under an earlier files sink's dir.
		if clobbers(a, b) {
			return fmt.Sprintf("lies in %s%s: an output of the sink could overwrite it", other, extNote(a.ext))
		}
	case !a.dir && b.dir:
		// An input or output file under a files sink's dir.
		if clobbers(b, a) {
			return fmt.Sprintf("contains %s%s: an output could overwrite it", other, fileExtNote(b.ext))
		}
	case a.dir && b.dir:
		if within(a, b) > 0 || within(b, a) > 0 {
			return "is nested with " + other + ": the outputs could overwrite each other"
		}
	case within(b, a) > 0:
		return "lies below " + other + ", which is a file, not a directory"
	case within(a, b) > 0:
		return "would be a directory holding " + other + ", which is a file"
	}
	return ""
}

// extNote says why a file could be one of a files sink's outputs.
func extNote(ext string) string {
	if ext == "" {
		return ", whose outputs keep their records' names"
	}
	return fmt.Sprintf(" and ends in its ext %q", ext)
}

// fileExtNote says why a file under a files sink's dir could be one of its outputs.
func fileExtNote(ext string) string {
	if ext == "" {
		return ", and the sink's outputs keep their records' names"
	}
	return fmt.Sprintf(", which ends in the sink's ext %q", ext)
}

// clobbers reports whether the files sink sink could write a file that is f: f lies under its
// dir and, when the sink sets ext, ends in it (every output does).
func clobbers(sink, f *endpoint) bool {
	return within(f, sink) > 0 && (sink.ext == "" || strings.HasSuffix(filepath.Base(f.real), sink.ext))
}

// samePath reports whether a and b are the same file or directory: the same resolved path, or
// (when both exist) the same inode, as for hard links and bind mounts.
func samePath(a, b *endpoint) bool {
	return a.real == b.real || a.fi != nil && b.fi != nil && os.SameFile(a.fi, b.fi)
}

// within returns how many levels below dir's directory f lies (1: directly in it), or 0 when f
// is not under it.
func within(f, dir *endpoint) int {
	depth := 1
	for p := filepath.Dir(f.real); ; p = filepath.Dir(p) {
		if p == dir.real {
			return depth
		}
		if dir.fi != nil {
			if fi, err := os.Stat(p); err == nil && os.SameFile(fi, dir.fi) {
				return depth
			}
		}
		if p == filepath.Dir(p) {
			return 0
		}
		depth++
	}
}

// isStream reports whether path names one of the process's standard streams or descriptors
// rather than a file of its own.
func isStream(path string) bool {
	switch path {
	case "-", "/dev/stdin", "/dev/stdout", "/dev/stderr":
		return true
	}
	for _, dir := range []string{"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"} {
		if strings.HasPrefix(path, dir) {
			return true
		}
	}
	return false
}

// resolvePath resolves the symbolic links of an absolute, clean path. Where the path does not
// exist, its nearest existing parent is resolved and the rest appended; a dangling symbolic link
// is followed to its target, which the run would create.
func resolvePath(path string, depth int) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 && depth < 40 {
		if target, err := os.Readlink(path); err == nil {
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(path), target)
			}
			return resolvePath(target, depth+1)
		}
	}
	parent := filepath.Dir(path)
	if parent == path {
		return path
	}
	return filepath.Join(resolvePath(parent, depth), filepath.Base(path))
}
