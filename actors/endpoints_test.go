package actors

import (
	"bytes"
	"context"
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
