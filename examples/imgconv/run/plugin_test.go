package main

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/proctest"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// pngBomb returns a small, valid-looking PNG that decodes to a w×h 8-bit gray image of zeros:
// a few hundred KiB that cost the decoder w×h bytes of memory.
func pngBomb(t *testing.T, w, h int) []byte {
	t.Helper()
	var idat bytes.Buffer
	z, err := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]byte, 1+w) // filter byte 0, then w zero pixels
	for range h {
		if _, err := z.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&out, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.Write(&out, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8-bit grayscale
	chunk("IHDR", ihdr)
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

// TestPluginSurvivesAHostileImage runs the job of examples/imgconv/plugin.yaml, the converter in
// plugin processes, on sample images and one hostile image whose decoding blows the plugin's
// memory limit (lowered to 64 MiB here, so that the test stays light): the process decoding it
// is killed, each time it is tried, and the image ends in the dead letters with the reason, while
// the host carries on, converts the others, exits 3 and leaves no plugin process behind.
func TestPluginSurvivesAHostileImage(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := proctest.Build(t, filepath.Join(dir, "bin"), "imgconv-plugin", "github.com/troupe-dev/troupe/examples/imgconv/plugin")
	specText, err := os.ReadFile(filepath.Join("..", "plugin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(specText, []byte("rss: 512MiB")) || !bytes.Contains(specText, []byte("cmd: [./bin/imgconv-plugin]")) {
		t.Fatalf("plugin.yaml changed: update this test\n%s", specText)
	}
	specPath := filepath.Join(dir, "plugin.yaml")
	if err := os.WriteFile(specPath, bytes.Replace(specText, []byte("rss: 512MiB"), []byte("rss: 64MiB"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if _, err := imgconv.Generate(in, 4, 1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "bomb.png"), pngBomb(t, 9000, 9000), 0o644); err != nil { // 81 MB decoded
		t.Fatal(err)
	}

	var stderr bytes.Buffer
	rc := run([]string{"-spec", specPath, "-in", in, "-out", out, "-workers", "2"}, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if rc != 3 {
		t.Fatalf("exit status %d, want 3 (one dead letter)", rc)
	}
	jpgs, _ := filepath.Glob(filepath.Join(out, "*.jpg"))
	var names []string
	for _, p := range jpgs {
		names = append(names, filepath.Base(p))
	}
	if want := []string{"img-0001.jpg", "img-0002.jpg", "img-0003.jpg", "img-0004.jpg"}; !slices.Equal(names, want) {
		t.Errorf("outputs %v, want %v", names, want)
	}
	dead, err := os.ReadFile(filepath.Join(out, "dead.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(dead, []byte("\n")), []byte("\n")) // the payload makes a long line
	var d struct{ Key, Error string }
	if len(lines) != 1 || json.Unmarshal(lines[0], &d) != nil || d.Key != "bomb.png" || !strings.Contains(d.Error, "rss") {
		t.Errorf("dead.jsonl: %d lines, the first for %q with error %q; want one line for bomb.png naming the memory limit", len(lines), d.Key, d.Error)
	}
	if !strings.Contains(stderr.String(), "4 images converted, 1 dead letters") {
		t.Error("the summary does not say 4 converted, 1 dead letter")
	}
	if pids := proctest.Running(bin); len(pids) > 0 {
		t.Errorf("plugin processes still running after the run: %v", pids)
	}
}
