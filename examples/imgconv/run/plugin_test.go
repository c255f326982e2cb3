package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/internal/proctest"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// pngBomb returns a small, valid PNG that decodes to a w×h 8-bit gray image of zeros: a few
// hundred KiB that cost the decoder w×h bytes of memory. Its zlib stream is written by hand (one
// literal zero, then matches of 258 bytes at distance 1), which costs nothing even under -race.
func pngBomb(w, h int) []byte {
	n := (1 + w) * h // each row: filter byte 0, then w zero pixels
	var bw bitWriter
	bw.bits(1, 1)    // BFINAL
	bw.bits(1, 2)    // BTYPE 01: fixed Huffman codes
	bw.code(0x30, 8) // literal 0
	for left := n - 1; left > 0; {
		if left >= 258 {
			bw.code(0xC5, 8) // length 258 (code 285)
			bw.code(0, 5)    // distance 1 (code 0)
			left -= 258
		} else {
			bw.code(0x30, 8) // literal 0
			left--
		}
	}
	bw.code(0, 7) // end of block (code 256)
	idat := append([]byte{0x78, 0x01}, bw.flush()...)
	idat = binary.BigEndian.AppendUint32(idat, uint32(n%65521)<<16|1) // Adler-32 of n zeros

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
	chunk("IDAT", idat)
	chunk("IEND", nil)
	return out.Bytes()
}

// bitWriter writes a DEFLATE bit stream: values least significant bit first, Huffman codes
// most significant bit first.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (b *bitWriter) bits(v uint64, n uint) {
	b.acc |= v << b.nacc
	b.nacc += n
	for b.nacc >= 8 {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
		b.nacc -= 8
	}
}

func (b *bitWriter) code(c uint64, n uint) {
	var r uint64
	for i := uint(0); i < n; i++ {
		r = r<<1 | (c>>i)&1
	}
	b.bits(r, n)
}

func (b *bitWriter) flush() []byte {
	if b.nacc > 0 {
		b.out = append(b.out, byte(b.acc))
		b.acc, b.nacc = 0, 0
	}
	return b.out
}

// TestPNGBombDecodes checks the hostile image is a real PNG of the size it claims, all zeros.
func TestPNGBombDecodes(t *testing.T) {
	img, err := png.Decode(bytes.NewReader(pngBomb(300, 200)))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Bounds().Dx() != 300 || g.Bounds().Dy() != 200 || slices.ContainsFunc(g.Pix, func(b byte) bool { return b != 0 }) {
		t.Fatalf("decoded %T %v", img, img.Bounds())
	}
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
	if _, err := imgconv.Generate(in, 3, 1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "bomb.png"), pngBomb(9000, 9000), 0o644); err != nil { // 81 MB decoded
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
	if want := []string{"img-0001.jpg", "img-0002.jpg", "img-0003.jpg"}; !slices.Equal(names, want) {
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
	if !strings.Contains(stderr.String(), "3 images converted, 1 dead letters") {
		t.Error("the summary does not say 3 converted, 1 dead letter")
	}
	if pids := proctest.Running(bin); len(pids) > 0 {
		t.Errorf("plugin processes still running after the run: %v", pids)
	}
}
