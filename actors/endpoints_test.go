package actors

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe"
)

// epWrite creates a file under dir (and its parent directories) with the given contents.
func epWrite(t *testing.T, dir, rel, contents string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// epReadAll reads a source to its end in batches of max, checking the batch contract.
func epReadAll(t *testing.T, src troupe.Source, max int) []troupe.Record {
	t.Helper()
	var all []troupe.Record
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("source never reached io.EOF")
		}
		recs, err := src.Read(context.Background(), max)
		if len(recs) > max {
			t.Fatalf("Read(%d) returned %d records", max, len(recs))
		}
		all = append(all, recs...)
		if errors.Is(err, io.EOF) {
			// A source at its end keeps saying so.
			if recs, err := src.Read(context.Background(), max); len(recs) != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("Read after io.EOF = %d records, %v; want 0, io.EOF", len(recs), err)
			}
			return all
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(recs) == 0 {
			t.Fatal("Read returned no records and no error")
		}
	}
}

func epKeys(recs []troupe.Record) []string {
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.Key
	}
	return keys
}

func epPayloads(recs []troupe.Record) []string {
	ps := make([]string, len(recs))
	for i, r := range recs {
		ps[i] = string(r.Payload)
	}
	return ps
}

func epWantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// epTree makes the directory tree the files source tests list.
func epTree(t *testing.T) string {
	dir := t.TempDir()
	for rel, contents := range map[string]string{
		"b.txt":          "bee",
		"a-b.txt":        "a dash b",
		"c.log":          "log",
		"a/x.txt":        "ex",
		"a/z.log":        "zed",
		"a/deep/y.txt":   "why",
		"dir.txt/w.txt":  "double-u", // a directory that matches the glob is not a record
		"empty/none.txt": "",
	} {
		epWrite(t, dir, rel, contents)
	}
	return dir
}

func TestFilesSourceListing(t *testing.T) {
	dir := epTree(t)
	cases := []struct {
		glob      string
		recursive bool
		want      []string
	}{
		{"*.txt", false, []string{"a-b.txt", "b.txt"}},
		// "a-b.txt" sorts before "a/…" because '-' < '/': whole paths are compared.
		{"*.txt", true, []string{"a-b.txt", "a/deep/y.txt", "a/x.txt", "b.txt", "dir.txt/w.txt", "empty/none.txt"}},
		{"", false, []string{"a-b.txt", "b.txt", "c.log"}},
		{"", true, []string{"a-b.txt", "a/deep/y.txt", "a/x.txt", "a/z.log", "b.txt", "c.log", "dir.txt/w.txt", "empty/none.txt"}},
		{"?.log", true, []string{"a/z.log", "c.log"}},
		{"*.none", true, nil},
	}
	for _, c := range cases {
		t.Run(c.glob+"/"+strconv.FormatBool(c.recursive), func(t *testing.T) {
			src, err := NewFilesSource(dir, c.glob, c.recursive)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			total, ok := src.(troupe.Sized).Total()
			if !ok || total != int64(len(c.want)) {
				t.Fatalf("Total = %d, %v; want %d, true", total, ok, len(c.want))
			}
			recs := epReadAll(t, src, 2)
			if got := epKeys(recs); !slices.Equal(got, c.want) {
				t.Fatalf("keys = %q, want %q", got, c.want)
			}
		})
	}
}

func TestFilesSourceRecords(t *testing.T) {
	dir := epTree(t)
	// A relative dir works and yields absolute paths.
	t.Chdir(filepath.Dir(dir))
	src, err := NewFilesSource(filepath.Base(dir), "*.txt", true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Payloads are read when records are read: a change after listing shows.
	epWrite(t, dir, "b.txt", "changed after listing")
	recs := epReadAll(t, src, 100)
	want := map[string]string{
		"a-b.txt": "a dash b", "a/deep/y.txt": "why", "a/x.txt": "ex",
		"b.txt": "changed after listing", "dir.txt/w.txt": "double-u", "empty/none.txt": "",
	}
	if len(recs) != len(want) {
		t.Fatalf("got %d records, want %d", len(recs), len(want))
	}
	for _, r := range recs {
		if string(r.Payload) != want[r.Key] {
			t.Errorf("%s: payload %q, want %q", r.Key, r.Payload, want[r.Key])
		}
		wantPath := filepath.Join(dir, filepath.FromSlash(r.Key))
		if r.Meta["path"] != wantPath {
			t.Errorf("%s: meta path %q, want %q", r.Key, r.Meta["path"], wantPath)
		}
		if r.Meta["size"] != strconv.Itoa(len(want[r.Key])) {
			t.Errorf("%s: meta size %q, want %d", r.Key, r.Meta["size"], len(want[r.Key]))
		}
	}
}

func TestFilesSourceSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	epWrite(t, dir, "real.txt", "real")
	target := epWrite(t, outside, "target.txt", "linked")
	epWrite(t, outside, "sub/hidden.txt", "not reached")
	if err := os.Symlink(target, filepath.Join(dir, "link.txt")); err != nil {
		t.Skipf("symbolic links unsupported: %v", err)
	}
	if err := os.Symlink(filepath.Join(outside, "sub"), filepath.Join(dir, "linkdir.txt")); err != nil {
		t.Fatal(err)
	}
	src, err := NewFilesSource(dir, "*.txt", true)
	if err != nil {
		t.Fatal(err)
	}
	recs := epReadAll(t, src, 10)
	src.Close()
	if got, want := epKeys(recs), []string{"link.txt", "real.txt"}; !slices.Equal(got, want) {
		t.Fatalf("keys = %q, want %q (links to files count, linked directories are not entered)", got, want)
	}
	if string(recs[0].Payload) != "linked" {
		t.Fatalf("link payload = %q", recs[0].Payload)
	}

	// The directory itself may be a symbolic link; paths keep the name the caller gave.
	linkedRoot := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink(dir, linkedRoot); err != nil {
		t.Fatal(err)
	}
	src, err = NewFilesSource(linkedRoot, "real.txt", false)
	if err != nil {
		t.Fatal(err)
	}
	recs = epReadAll(t, src, 10)
	src.Close()
	if len(recs) != 1 || recs[0].Meta["path"] != filepath.Join(linkedRoot, "real.txt") {
		t.Fatalf("through a linked root: %v", recs)
	}

	// A dangling link that matches is an error, not a silent skip.
	if err := os.Symlink(filepath.Join(outside, "gone.txt"), filepath.Join(dir, "dangling.txt")); err != nil {
		t.Fatal(err)
	}
	_, err = NewFilesSource(dir, "*.txt", false)
	epWantErr(t, err, "dangling.txt")
}

func TestFilesSourceBadInput(t *testing.T) {
	dir := t.TempDir()
	file := epWrite(t, dir, "plain.txt", "x")

	_, err := NewFilesSource(dir, "[a-", false)
	epWantErr(t, err, "[a-", "pattern")

	missing := filepath.Join(dir, "missing")
	_, err = NewFilesSource(missing, "*", false)
	epWantErr(t, err, missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v is not fs.ErrNotExist", err)
	}

	_, err = NewFilesSource(file, "*", false)
	epWantErr(t, err, file, "not a directory")
}

func TestFilesSourceUnreadable(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"1.txt", "2.txt", "3.txt", "4.txt"} {
		epWrite(t, dir, name, "contents of "+name)
	}
	src, err := NewFilesSource(dir, "*.txt", false)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// 2.txt vanishes and 3.txt becomes a directory between listing and reading.
	if err := os.Remove(filepath.Join(dir, "2.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "3.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "3.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The records before the failing file come first, without an error.
	recs, err := src.Read(ctx, 10)
	if err != nil || !slices.Equal(epKeys(recs), []string{"1.txt"}) {
		t.Fatalf("first Read = %q, %v; want [1.txt], nil", epKeys(recs), err)
	}
	// Then the error, naming the file, as often as it is asked: the file is not skipped.
	for range 2 {
		recs, err = src.Read(ctx, 10)
		if len(recs) != 0 {
			t.Fatalf("Read returned %q with the error", epKeys(recs))
		}
		epWantErr(t, err, "2.txt")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v is not fs.ErrNotExist", err)
		}
	}
	// Once it is back, reading goes on. 3.txt, no longer a regular file, is bad input for its
	// record, which comes without a payload and with the reason.
	epWrite(t, dir, "2.txt", "back")
	recs, err = src.Read(ctx, 10)
	if !errors.Is(err, io.EOF) || !slices.Equal(epKeys(recs), []string{"2.txt", "3.txt", "4.txt"}) ||
		!slices.Equal(epPayloads(recs), []string{"back", "", "contents of 4.txt"}) {
		t.Fatalf("Read = %q %q, %v", epKeys(recs), epPayloads(recs), err)
	}
	fsrc := src.(*filesSource)
	epWantErr(t, fsrc.unreadable(1), "3.txt", "not a regular file", "a directory")
	for i := range 3 {
		if err := fsrc.unreadable(i); err != nil {
			t.Fatalf("unreadable(%d) = %v after it was asked once", i, err)
		}
	}

	if os.Geteuid() != 0 { // root reads anything
		f := epWrite(t, dir, "locked/5.txt", "secret")
		if err := os.Chmod(f, 0); err != nil {
			t.Fatal(err)
		}
		src2, err := NewFilesSource(filepath.Join(dir, "locked"), "", false)
		if err != nil {
			t.Fatal(err)
		}
		defer src2.Close()
		_, err = src2.Read(ctx, 10)
		epWantErr(t, err, "5.txt")
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("%v is not fs.ErrPermission", err)
		}
	}
}

func TestFilesSourceContextAndClose(t *testing.T) {
	dir := t.TempDir()
	epWrite(t, dir, "a", "a")
	src, err := NewFilesSource(dir, "", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if recs, err := src.Read(ctx, 1); len(recs) != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read with cancelled ctx = %d records, %v", len(recs), err)
	}
	if _, err := src.Read(context.Background(), 0); err == nil {
		t.Fatal("Read(0) succeeded")
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := src.Read(context.Background(), 1); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Read after Close = %v, want an error", err)
	}
}

func TestLinesSource(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	// A line whose "\r" is the last byte of the 64 KiB read buffer, its "\n" the first of the next.
	edge := strings.Repeat("e", linesReadBuffer-1)
	cases := []struct {
		name  string
		input string
		want  []string
	}{
		{"empty", "", nil},
		{"lf", "a\nb\n", []string{"a", "b"}},
		{"crlf", "a\r\nb\r\n\r\nc", []string{"a", "b", "", "c"}},
		{"no final newline", "one\ntwo", []string{"one", "two"}},
		{"lone cr kept", "x\ry\nz\r", []string{"x\ry", "z\r"}},
		{"blank lines", "\n\n", []string{"", ""}},
		{"1 MiB line", "short\n" + string(long) + "\r\nafter", []string{"short", string(long), "after"}},
		{"1 MiB last line", string(long), []string{string(long)}},
		{"cr at buffer end", edge + "\r\nnext\n", []string{edge, "next"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := epWrite(t, t.TempDir(), "in.txt", c.input)
			for _, viaStdin := range []bool{false, true} {
				var src troupe.Source
				var err error
				if viaStdin {
					src, err = NewLinesSource("-", strings.NewReader(c.input))
				} else {
					src, err = NewLinesSource(path, nil)
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := src.(troupe.Sized); ok {
					t.Fatal("lines source claims to know its total")
				}
				recs := epReadAll(t, src, 3)
				if err := src.Close(); err != nil {
					t.Fatal(err)
				}
				got := epPayloads(recs)
				if !slices.Equal(got, c.want) {
					t.Fatalf("stdin=%v: got %d lines, want %d; first: %.40q", viaStdin, len(got), len(c.want), got)
				}
				for i, r := range recs {
					if r.Key != strconv.Itoa(i+1) {
						t.Fatalf("record %d has key %q", i, r.Key)
					}
					if r.Meta != nil {
						t.Fatalf("record %d has metadata %v", i, r.Meta)
					}
				}
			}
		})
	}
}

func TestLinesSourcePayloadsAreIndependent(t *testing.T) {
	src, err := NewLinesSource("-", strings.NewReader("aa\nbb\ncc\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	recs := epReadAll(t, src, 10)
	// A stage may append to or overwrite a payload in place; its neighbours must not change.
	recs[0].Payload = append(recs[0].Payload, "XXXX"...)
	recs[1].Payload[0] = 'B'
	if got := epPayloads(recs); !slices.Equal(got, []string{"aaXXXX", "Bb", "cc"}) {
		t.Fatalf("payloads after mutation = %q", got)
	}
}

// epFlakyReader returns its chunks in turn; a chunk that is an error is returned as one.
type epFlakyReader struct{ chunks []any }

func (r *epFlakyReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	c := r.chunks[0]
	r.chunks = r.chunks[1:]
	if err, ok := c.(error); ok {
		return 0, err
	}
	return copy(p, c.(string)), nil
}

func TestLinesSourceReadErrorLosesNothing(t *testing.T) {
	boom := errors.New("disk on fire")
	in := &epFlakyReader{chunks: []any{"ab\ncd", boom, "ef\ngh"}}
	src, err := NewLinesSource("-", in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	recs, err := src.Read(ctx, 10)
	if err != nil || !slices.Equal(epPayloads(recs), []string{"ab"}) {
		t.Fatalf("first Read = %q, %v; want [ab], nil", epPayloads(recs), err)
	}
	recs, err = src.Read(ctx, 10)
	if len(recs) != 0 || !errors.Is(err, boom) {
		t.Fatalf("second Read = %q, %v; want the read error", epPayloads(recs), err)
	}
	epWantErr(t, err, "stdin", "line 2")
	// Reading on resumes the interrupted line.
	recs, err = src.Read(ctx, 10)
	if !errors.Is(err, io.EOF) || !slices.Equal(epPayloads(recs), []string{"cdef", "gh"}) || !slices.Equal(epKeys(recs), []string{"2", "3"}) {
		t.Fatalf("third Read = %q %q, %v; want [cdef gh] [2 3], io.EOF", epPayloads(recs), epKeys(recs), err)
	}
}

func TestLinesSourceBadInput(t *testing.T) {
	if _, err := NewLinesSource("-", nil); err == nil {
		t.Fatal("\"-\" without stdin succeeded")
	}
	missing := filepath.Join(t.TempDir(), "missing.txt")
	_, err := NewLinesSource(missing, nil)
	epWantErr(t, err, missing)
	dir := t.TempDir()
	_, err = NewLinesSource(dir, nil)
	epWantErr(t, err, dir, "directory")

	src, err := NewLinesSource(epWrite(t, dir, "f", "x\ny\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := src.Read(context.Background(), 1); err != nil || len(recs) != 1 {
		t.Fatalf("Read = %d records, %v", len(recs), err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := src.Read(context.Background(), 1); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Read after Close = %v, want an error", err)
	}
}

func TestLinesSourceDoesNotCloseStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.WriteString("1\n2\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	src, err := NewLinesSource("-", r)
	if err != nil {
		t.Fatal(err)
	}
	if got := epPayloads(epReadAll(t, src, 10)); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("lines = %q", got)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stat(); err != nil {
		t.Fatalf("stdin was closed: %v", err)
	}
}

func TestRangeSource(t *testing.T) {
	const count, size = 10, 13
	src := NewRangeSource(count, size)
	if total, ok := src.(troupe.Sized).Total(); !ok || total != count {
		t.Fatalf("Total = %d, %v", total, ok)
	}
	var sizes []int
	var all []troupe.Record
	for {
		recs, err := src.Read(context.Background(), 3)
		sizes = append(sizes, len(recs))
		all = append(all, recs...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(sizes, []int{3, 3, 3, 1}) {
		t.Fatalf("batch sizes = %v, want [3 3 3 1] with io.EOF on the last", sizes)
	}
	again := epReadAll(t, NewRangeSource(count, size), 7)
	seen := map[string]bool{}
	for i, r := range all {
		if r.Key != strconv.Itoa(i) {
			t.Fatalf("record %d has key %q", i, r.Key)
		}
		if len(r.Payload) != size || cap(r.Payload) != size {
			t.Fatalf("record %d: payload len %d cap %d, want %d", i, len(r.Payload), cap(r.Payload), size)
		}
		if !bytes.Equal(r.Payload, again[i].Payload) || r.Key != again[i].Key {
			t.Fatalf("record %d differs between two sources", i)
		}
		if seen[string(r.Payload)] {
			t.Fatalf("record %d repeats an earlier payload", i)
		}
		seen[string(r.Payload)] = true
	}
	// The payload depends on the index only, not on how the records were batched.
	p := make([]byte, size)
	rangePayload(p, 4)
	if !bytes.Equal(p, all[4].Payload) {
		t.Fatal("payload 4 differs from rangePayload(4)")
	}
	// A longer payload starts like a shorter one of the same index.
	long := epReadAll(t, NewRangeSource(5, 100), 5)
	if !bytes.Equal(long[4].Payload[:size], all[4].Payload) {
		t.Fatal("payload prefix depends on size")
	}

	if recs := epReadAll(t, NewRangeSource(0, 8), 4); len(recs) != 0 {
		t.Fatalf("empty range produced %d records", len(recs))
	}
	for _, r := range epReadAll(t, NewRangeSource(3, 0), 4) {
		if len(r.Payload) != 0 {
			t.Fatalf("size 0 payload has %d bytes", len(r.Payload))
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if v := recover(); v == nil || !strings.Contains(v.(string), "-1") {
				t.Fatalf("NewRangeSource(-1, 0) recovered %v, want a panic naming the count", v)
			}
		}()
		NewRangeSource(-1, 0)
	}()
}

func BenchmarkRangeSourceRead(b *testing.B) {
	ctx := context.Background()
	src := NewRangeSource(int64(b.N), 100)
	b.ReportAllocs()
	b.SetBytes(100)
	for n := 0; n < b.N; {
		recs, err := src.Read(ctx, 256)
		n += len(recs)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// epTreeFiles lists every file under dir (relative, forward slashes) with its contents.
func epTreeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestFilesSinkNames(t *testing.T) {
	for _, ext := range []string{".json", "json"} {
		dir := filepath.Join(t.TempDir(), "out", "nested") // created by the sink
		sink, err := NewFilesSink(dir, ext)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"a.txt", "sub/dir/b.csv", "noext", ".profile", "x.d/y", "p/../q.tar.gz"} {
			if err := sink.Write(troupe.Record{Key: key, Payload: []byte("from " + key)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := sink.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"a.json":         "from a.txt",
			"sub/dir/b.json": "from sub/dir/b.csv",
			"noext.json":     "from noext",
			".profile.json":  "from .profile",
			"x.d/y.json":     "from x.d/y",
			"q.tar.json":     "from p/../q.tar.gz",
		}
		got := epTreeFiles(t, dir)
		if len(got) != len(want) {
			t.Fatalf("ext %q: files %v, want %v", ext, got, want)
		}
		for name, contents := range want {
			if got[name] != contents {
				t.Fatalf("ext %q: %s = %q, want %q (all: %v)", ext, name, got[name], contents, got)
			}
		}
	}

	dir := t.TempDir()
	sink, err := NewFilesSink(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"keep.txt", "d/keep.csv"} {
		if err := sink.Write(troupe.Record{Key: key, Payload: []byte(key)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if got := epTreeFiles(t, dir); len(got) != 2 || got["keep.txt"] != "keep.txt" || got["d/keep.csv"] != "d/keep.csv" {
		t.Fatalf("ext \"\": files %v", got)
	}

	for _, bad := range []string{".", "a/b", "x\x00"} {
		if _, err := NewFilesSink(t.TempDir(), bad); err == nil {
			t.Errorf("extension %q accepted", bad)
		}
	}
}

func TestFilesSinkRefusesEscapes(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "out")
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	sink, err := NewFilesSink(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../escape", "/abs/escape", "a/../../escape", "..", ".", "", "link/escape", "link/deeper/escape"} {
		err := sink.Write(troupe.Record{Key: key, Payload: []byte("x")})
		epWantErr(t, err, strconv.Quote(key))
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := epTreeFiles(t, base); len(got) != 0 {
		t.Fatalf("refused keys left files: %v", got)
	}
	// The sink still works after refusing.
	if err := sink.Write(troupe.Record{Key: "fine", Payload: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
}

func TestFilesSinkAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	sink, err := NewFilesSink(dir, ".out")
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(troupe.Record{Key: "r.txt", Payload: []byte("first version")}); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(filepath.Join(dir, "r.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// A second record with the same output name replaces the file as a whole: a reader that had
	// the old file open still sees all of it (a write in place would have truncated it).
	if err := sink.Write(troupe.Record{Key: "r.csv", Payload: []byte("second")}); err != nil {
		t.Fatal(err)
	}
	if data, err := io.ReadAll(old); err != nil || string(data) != "first version" {
		t.Fatalf("old file now reads %q, %v", data, err)
	}
	// An output name taken by a directory fails, naming the key, and leaves no temporary file.
	if err := os.Mkdir(filepath.Join(dir, "taken.out"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = sink.Write(troupe.Record{Key: "taken.bin", Payload: []byte("x")})
	epWantErr(t, err, `"taken.bin"`, filepath.Join(dir, "taken.out"))
	// A subdirectory removed behind the sink's back is made again.
	if err := sink.Write(troupe.Record{Key: "gone/a", Payload: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(troupe.Record{Key: "gone/b", Payload: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got := epTreeFiles(t, dir)
	want := map[string]string{"r.out": "second", "gone/b.out": "2"}
	if len(got) != len(want) || got["r.out"] != want["r.out"] || got["gone/b.out"] != want["gone/b.out"] {
		t.Fatalf("files = %v, want %v (no temporary files)", got, want)
	}
	if err := sink.Write(troupe.Record{Key: "late", Payload: nil}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

func TestFilesSinkManyFilesLeaveNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	sink, err := NewFilesSink(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	src := NewRangeSource(200, 64)
	for _, r := range epReadAll(t, src, 50) {
		r.Key = "d" + strconv.Itoa(len(r.Key)) + "/" + r.Key
		if err := sink.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	got := epTreeFiles(t, dir)
	if len(got) != 200 {
		t.Fatalf("%d files, want 200", len(got))
	}
	for name, contents := range got {
		if strings.Contains(name, ".troupe-") {
			t.Fatalf("temporary file left: %s", name)
		}
		i, err := strconv.ParseInt(name[strings.IndexByte(name, '/')+1:], 10, 64)
		if err != nil {
			t.Fatalf("unexpected file %s", name)
		}
		want := make([]byte, 64)
		rangePayload(want, i)
		if contents != string(want) {
			t.Fatalf("%s has the wrong contents", name)
		}
	}
}

func TestLinesSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "out.txt")
	sink, err := NewLinesSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "", "b c", strings.Repeat("z", 100_000)} {
		if err := sink.Write(troupe.Record{Key: p, Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	want := "a\n\nb c\n" + strings.Repeat("z", 100_000) + "\n"
	if data, err := os.ReadFile(path); err != nil || string(data) != want {
		t.Fatalf("file holds %d bytes (%v), want %d", len(data), err, len(want))
	}
	if err := sink.Write(troupe.Record{Payload: []byte("late")}); err == nil {
		t.Fatal("Write after Close succeeded")
	}

	// An existing file is truncated.
	sink, err = NewLinesSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(troupe.Record{Payload: []byte("only")}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "only\n" {
		t.Fatalf("after truncation: %q", data)
	}

	notDir := epWrite(t, t.TempDir(), "file", "")
	_, err = NewLinesSink(filepath.Join(notDir, "sub", "out.txt"), nil)
	epWantErr(t, err, notDir)
	if _, err := NewLinesSink("-", nil); err == nil {
		t.Fatal("\"-\" without stdout succeeded")
	}
}

// epStdout records what is written and whether it was closed.
type epStdout struct {
	bytes.Buffer
	closed bool
	fail   error
}

func (w *epStdout) Write(p []byte) (int, error) {
	if w.fail != nil {
		return 0, w.fail
	}
	return w.Buffer.Write(p)
}

func (w *epStdout) Close() error { w.closed = true; return nil }

func TestLinesSinkStdout(t *testing.T) {
	out := &epStdout{}
	sink, err := NewLinesSink("-", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"x", "y"} {
		if err := sink.Write(troupe.Record{Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() != 0 {
		t.Fatalf("unbuffered: %q written before Flush", out.String())
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "x\ny\n" {
		t.Fatalf("after Flush: %q", out.String())
	}
	if err := sink.Write(troupe.Record{Payload: []byte("z")}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "x\ny\nz\n" || out.closed {
		t.Fatalf("after Close: %q, closed=%v", out.String(), out.closed)
	}

	broken := &epStdout{fail: errors.New("pipe broken")}
	sink, err = NewLinesSink("-", broken)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Write(troupe.Record{Payload: []byte("lost?")}); err != nil {
		t.Fatal(err)
	}
	epWantErr(t, sink.Flush(), "stdout", "pipe broken")
	epWantErr(t, sink.Close(), "stdout", "pipe broken")
}

func TestDiscardSink(t *testing.T) {
	sink := NewDiscardSink()
	for _, r := range epReadAll(t, NewRangeSource(5, 10), 5) {
		if err := sink.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestJSONLDeadLettersRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dead.jsonl")
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	letters := []troupe.DeadLetter{
		{Key: "photos/a.jpg", Seq: 7, Stage: "convert", Attempts: 3, Error: "exit status 2: \"bad\" <header>\n", Payload: binary, Meta: map[string]string{"path": "/in/photos/a.jpg", "size": "256"}},
		{Key: "", Seq: 1 << 60, Stage: "s", Attempts: 1, Error: "", Payload: nil},
		{Key: "bad\xffkey", Seq: 2, Stage: "s", Attempts: 5, Error: "x", Payload: []byte("text"), Meta: map[string]string{}},
	}
	dl, err := NewJSONLDeadLetters(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range letters {
		if err := dl.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dl.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := dl.Write(letters[0]); err == nil {
		t.Fatal("Write after Close succeeded")
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(letters) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(letters), data)
	}
	for i, line := range lines {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		for _, field := range []string{"key", "seq", "stage", "attempts", "error", "payload_b64"} {
			if _, ok := raw[field]; !ok {
				t.Fatalf("line %d lacks %q: %s", i+1, field, line)
			}
		}
		if _, ok := raw["meta"]; ok != (len(letters[i].Meta) > 0) {
			t.Fatalf("line %d: meta present=%v with %d entries: %s", i+1, ok, len(letters[i].Meta), line)
		}
		var got struct {
			Key        string            `json:"key"`
			KeyB64     string            `json:"key_b64"`
			Seq        uint64            `json:"seq"`
			Stage      string            `json:"stage"`
			Attempts   int               `json:"attempts"`
			Error      string            `json:"error"`
			PayloadB64 string            `json:"payload_b64"`
			Meta       map[string]string `json:"meta"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want := letters[i]
		payload, err := base64.StdEncoding.DecodeString(got.PayloadB64)
		if err != nil {
			t.Fatalf("line %d: payload_b64: %v", i+1, err)
		}
		key := got.Key
		if got.KeyB64 != "" {
			k, err := base64.StdEncoding.DecodeString(got.KeyB64)
			if err != nil {
				t.Fatalf("line %d: key_b64: %v", i+1, err)
			}
			key = string(k)
		}
		if key != want.Key || got.Seq != want.Seq || got.Stage != want.Stage || got.Attempts != want.Attempts ||
			got.Error != want.Error || !bytes.Equal(payload, want.Payload) || len(got.Meta) != len(want.Meta) {
			t.Fatalf("line %d decodes to %+v, want %+v", i+1, got, want)
		}
		for k, v := range want.Meta {
			if got.Meta[k] != v {
				t.Fatalf("line %d: meta %q = %q, want %q", i+1, k, got.Meta[k], v)
			}
		}
	}
	if strings.Contains(lines[0], `\u003c`) {
		t.Fatalf("HTML escaping garbles errors: %s", lines[0])
	}
}

func TestJSONLDeadLettersAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	// A previous run crashed in the middle of a line.
	if err := os.WriteFile(path, []byte(`{"key":"old","seq":1}`+"\n"+`{"key":"torn`), 0o644); err != nil {
		t.Fatal(err)
	}
	dl, err := NewJSONLDeadLetters(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.Write(troupe.DeadLetter{Key: "new", Seq: 9, Stage: "s", Attempts: 1, Error: "e", Payload: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || lines[0] != `{"key":"old","seq":1}` || lines[1] != `{"key":"torn` {
		t.Fatalf("earlier lines not kept as they were:\n%s", data)
	}
	var last troupe.DeadLetter
	if err := json.Unmarshal([]byte(lines[2]), &last); err != nil || last.Key != "new" || last.Seq != 9 {
		t.Fatalf("new line %q: %+v, %v", lines[2], last, err)
	}

	notDir := epWrite(t, t.TempDir(), "file", "")
	_, err = NewJSONLDeadLetters(filepath.Join(notDir, "dead.jsonl"))
	epWantErr(t, err, notDir)
}

// TestEndpointsInPipeline runs files and lines through the runtime: every input reaches the sink
// or the dead letters, and the runtime's Close of each endpoint leaves complete outputs.
func TestEndpointsInPipeline(t *testing.T) {
	in, base := t.TempDir(), t.TempDir()
	want := map[string]string{}
	for i := range 40 {
		rel := "f" + strconv.Itoa(i) + ".txt"
		if i%3 == 0 {
			rel = "sub/" + rel
		}
		epWrite(t, in, rel, "payload "+rel)
		want[strings.TrimSuffix(rel, ".txt")+".up"] = strings.ToUpper("payload " + rel)
	}
	epWrite(t, in, "poison.txt", "\x00\xffbinary poison")
	epWrite(t, in, "skipped.log", "not matched")

	src, err := NewFilesSource(in, "*.txt", true)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(base, "out")
	sink, err := NewFilesSink(out, "up")
	if err != nil {
		t.Fatal(err)
	}
	deadPath := filepath.Join(base, "dead", "letters.jsonl")
	dead, err := NewJSONLDeadLetters(deadPath)
	if err != nil {
		t.Fatal(err)
	}
	upper := func(_ context.Context, r troupe.Record) ([]troupe.Record, error) {
		if r.Key == "poison.txt" {
			return nil, errors.New("poisoned")
		}
		r.Payload = bytes.ToUpper(r.Payload)
		return []troupe.Record{r}, nil
	}
	p := &troupe.Pipeline{
		Name:        "endpoints",
		Source:      src,
		Stages:      []troupe.Stage{{Name: "upper", Func: upper, Workers: 2, Attempts: 2}},
		Sink:        sink,
		DeadLetters: dead,
	}
	sum, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != 41 || sum.RecordsIn != 41 || sum.RecordsOut != 40 || sum.DeadLetters != 1 {
		t.Fatalf("summary %+v", sum)
	}
	got := epTreeFiles(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d output files, want %d: %v", len(got), len(want), got)
	}
	for name, contents := range want {
		if got[name] != contents {
			t.Fatalf("%s = %q, want %q", name, got[name], contents)
		}
	}
	data, err := os.ReadFile(deadPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Key        string `json:"key"`
		Stage      string `json:"stage"`
		Attempts   int    `json:"attempts"`
		Error      string `json:"error"`
		PayloadB64 []byte `json:"payload_b64"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dead letters %q: %v", data, err)
	}
	if d.Key != "poison.txt" || d.Stage != "upper" || d.Attempts != 2 || !strings.Contains(d.Error, "poisoned") ||
		string(d.PayloadB64) != "\x00\xffbinary poison" {
		t.Fatalf("dead letter %+v", d)
	}

	// Lines in, lines out, in input order.
	var input strings.Builder
	for i := range 500 {
		input.WriteString("line " + strconv.Itoa(i) + "\r\n")
	}
	lines, err := NewLinesSource("-", strings.NewReader(input.String()))
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	lsink, err := NewLinesSink("-", &stdout)
	if err != nil {
		t.Fatal(err)
	}
	p = &troupe.Pipeline{Source: lines, Stages: []troupe.Stage{{Name: "upper", Func: upper, Workers: 3}}, Sink: lsink, Order: troupe.OrderInput}
	if _, err := Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(strings.ToUpper(input.String()), "\r\n", "\n"); stdout.String() != want {
		t.Fatalf("lines out differ: got %d bytes, want %d", stdout.Len(), len(want))
	}
}
