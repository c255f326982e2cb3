//go:build cgo && !imgconv_purego

package imgconv

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// pngSpec describes a PNG that buildPNG writes from raw filtered rows.
type pngSpec struct {
	w, h, ct  int
	plte      []byte   // PLTE chunk data (3 bytes an entry)
	trns      []byte   // tRNS chunk data
	filtered  []byte   // the rows as stored: a filter byte, then the samples
	idatSizes []int    // how the zlib stream is split over IDAT chunks (the rest in a last one)
	extra     [][]byte // chunks (type + data) written after the IDAT chunks
	noIEND    bool
}

func buildPNG(t testing.TB, s pngSpec) []byte {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(s.w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(s.h))
	ihdr[8], ihdr[9] = 8, byte(s.ct)
	pngChunk(&out, "IHDR", ihdr)
	if s.plte != nil {
		pngChunk(&out, "PLTE", s.plte)
	}
	if s.trns != nil {
		pngChunk(&out, "tRNS", s.trns)
	}
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(s.filtered)
	zw.Close()
	stream := z.Bytes()
	for _, n := range s.idatSizes {
		n = min(n, len(stream))
		pngChunk(&out, "IDAT", stream[:n])
		stream = stream[n:]
	}
	pngChunk(&out, "IDAT", stream)
	for _, c := range s.extra {
		pngChunk(&out, string(c[:4]), c[4:])
	}
	if !s.noIEND {
		pngChunk(&out, "IEND", nil)
	}
	return out.Bytes()
}

// randomPNG returns a PNG of colour type ct whose rows hold random samples under random filters
// (every filter, on every row position, for every bytes-per-pixel), and tRNS when trns.
func randomPNG(t testing.TB, rng *rand.Rand, ct int, trns bool) []byte {
	w, h := 1+rng.IntN(70), 1+rng.IntN(40)
	ch := map[int]int{pngGray: 1, pngPalette: 1, pngGrayAlpha: 2, pngRGB: 3, pngRGBA: 4}[ct]
	s := pngSpec{w: w, h: h, ct: ct}
	// Few distinct sample values, so that colour keys are hit.
	levels := []byte{0, 1, 7, 128, 200, 254, 255}
	for range h {
		s.filtered = append(s.filtered, byte(rng.IntN(5)))
		for range w * ch {
			if rng.IntN(2) == 0 {
				s.filtered = append(s.filtered, levels[rng.IntN(len(levels))])
			} else {
				s.filtered = append(s.filtered, byte(rng.Uint32()))
			}
		}
	}
	if ct == pngPalette {
		n := 1 + rng.IntN(256) // indices beyond the palette occur
		for range 3 * n {
			s.plte = append(s.plte, byte(rng.Uint32()))
		}
		if trns {
			for range rng.IntN(n + 1) {
				s.trns = append(s.trns, levels[rng.IntN(len(levels))])
			}
		}
	} else if trns {
		k := func() []byte { return []byte{byte(rng.IntN(2)), levels[rng.IntN(len(levels))]} }
		switch ct {
		case pngGray:
			s.trns = k()
		case pngRGB:
			s.trns = append(append(k(), k()...), k()...)
		default:
			trns = false // not allowed with an alpha channel
		}
	}
	for range rng.IntN(4) {
		s.idatSizes = append(s.idatSizes, rng.IntN(200))
	}
	return buildPNG(t, s)
}

// decodeBoth decodes data through the 8-bit fast path (with libdeflate or zlib) and libpng's.
func decodeBoth(t *testing.T, data []byte, zlibOnly bool) (fast, ref image.Image, fastErr, refErr error) {
	t.Helper()
	pngZlibOnly = zlibOnly
	fast, fastErr = pngDecode(data)
	pngZlibOnly = false
	pngForceLibpng = true
	ref, refErr = pngDecode(data)
	pngForceLibpng = false
	return
}

func samePixels(a, b image.Image) error {
	if a.Bounds() != b.Bounds() {
		return fmt.Errorf("bounds %v and %v", a.Bounds(), b.Bounds())
	}
	_, ga := a.(*image.Gray)
	_, gb := b.(*image.Gray)
	if ga != gb {
		return fmt.Errorf("types %T and %T", a, b)
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != 0xffff || a2 != 0xffff {
				return fmt.Errorf("(%d,%d): %x,%x,%x,%x and %x,%x,%x,%x", x, y, r1, g1, b1, a1, r2, g2, b2, a2)
			}
		}
	}
	return nil
}

// The fast path gives libpng's pixels, exactly, for every 8-bit colour type, with and without
// tRNS, under every filter, with the stream in one IDAT chunk or many, inflated by libdeflate
// (where the system has it) or zlib.
func TestPNG8MatchesLibpng(t *testing.T) {
	if !haveLibdeflate() {
		t.Log("libdeflate.so.0 not found: only zlib inflates")
	}
	rng := rand.New(rand.NewPCG(8, 8))
	for _, ct := range []int{pngGray, pngRGB, pngPalette, pngGrayAlpha, pngRGBA} {
		for _, trns := range []bool{false, true} {
			for _, zlibOnly := range []bool{false, true} {
				name := fmt.Sprintf("ct%d/trns=%v/zlib=%v", ct, trns, zlibOnly)
				t.Run(name, func(t *testing.T) {
					for i := range 40 {
						data := randomPNG(t, rng, ct, trns)
						fast, ref, fe, re := decodeBoth(t, data, zlibOnly)
						if fe != nil || re != nil {
							t.Fatalf("image %d: fast path: %v; libpng: %v", i, fe, re)
						}
						if err := samePixels(fast, ref); err != nil {
							t.Fatalf("image %d: %v", i, err)
						}
						recycle(fast)
					}
				})
			}
		}
	}
	// The generated samples and the Go encoder's output, which picks filters by content.
	for name, data := range nativeSamples(t) {
		if !strings.HasSuffix(name, ".png") {
			continue
		}
		fast, ref, fe, re := decodeBoth(t, data, false)
		if (fe == nil) != (re == nil) {
			t.Fatalf("%s: fast path: %v; libpng: %v", name, fe, re)
		}
		if fe == nil {
			if err := samePixels(fast, ref); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
}

// Damage to the image data is an error on both paths, of the same kind (truncation or not).
func TestPNG8Errors(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rows := func(w, h, ch int, filter byte) []byte {
		var b []byte
		for range h {
			b = append(b, filter)
			for range w * ch {
				b = append(b, byte(rng.Uint32()))
			}
		}
		return b
	}
	good := pngSpec{w: 30, h: 20, ct: pngRGBA, filtered: rows(30, 20, 4, 4), idatSizes: []int{50, 50}}
	tests := []struct {
		name  string
		spec  func(s *pngSpec)
		data  func(b []byte) []byte
		words string
		eof   bool
	}{
		{name: "too little image data", spec: func(s *pngSpec) { s.filtered = s.filtered[:len(s.filtered)-7] }, words: "image data"},
		{name: "bad filter byte", spec: func(s *pngSpec) { s.filtered[4*(30*4+1)] = 5 }, words: "filter"},
		{name: "no IEND", spec: func(s *pngSpec) { s.noIEND = true }, words: "EOF", eof: true},
		{name: "truncated in IDAT", data: func(b []byte) []byte { return b[:len(b)/2] }, words: "EOF", eof: true},
		{name: "IDAT CRC", data: func(b []byte) []byte {
			i := bytes.Index(b, []byte("IDAT"))
			c := bytes.Clone(b)
			c[i+10] ^= 1
			return c
		}, words: "CRC"},
		{name: "bad zlib header", data: func(b []byte) []byte {
			i := bytes.Index(b, []byte("IDAT"))
			c := bytes.Clone(b)
			c[i+4] = 0x79
			// keep the chunk's CRC right: this is damage the format cannot see
			n := int(binary.BigEndian.Uint32(c[i-4:]))
			binary.BigEndian.PutUint32(c[i+4+n:], crc32.ChecksumIEEE(c[i:i+4+n]))
			return c
		}, words: "header"},
	}
	for _, tt := range tests {
		for _, zlibOnly := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/zlib=%v", tt.name, zlibOnly), func(t *testing.T) {
				s := good
				s.filtered = bytes.Clone(good.filtered)
				if tt.spec != nil {
					tt.spec(&s)
				}
				data := buildPNG(t, s)
				if tt.data != nil {
					data = tt.data(data)
				}
				_, _, fe, re := decodeBoth(t, data, zlibOnly)
				if fe == nil || re == nil {
					t.Fatalf("fast path: %v; libpng: %v; want errors", fe, re)
				}
				if !strings.Contains(fe.Error(), tt.words) || errors.Is(fe, io.ErrUnexpectedEOF) != tt.eof ||
					errors.Is(re, io.ErrUnexpectedEOF) != tt.eof {
					t.Errorf("fast path: %v; libpng: %v; want %q (truncation %v)", fe, re, tt.words, tt.eof)
				}
			})
		}
	}
	// A palette image without its palette: libpng's checks before the image data still apply.
	noPLTE := pngSpec{w: 30, h: 20, ct: pngPalette, filtered: rows(30, 20, 1, 0)}
	_, _, fe, re := decodeBoth(t, buildPNG(t, noPLTE), false)
	if fe == nil || re == nil || !strings.Contains(fe.Error(), "PLTE") {
		t.Errorf("no PLTE: fast path: %v; libpng: %v; want errors naming PLTE", fe, re)
	}

	// More image data than the image holds: ignored, as libpng does; chunks after the image
	// data (another IDAT, an ancillary chunk) are skipped.
	s := good
	s.filtered = append(bytes.Clone(good.filtered), make([]byte, 500)...)
	s.extra = [][]byte{[]byte("IDAT\x01\x02"), []byte("teXt hello")}
	for _, zlibOnly := range []bool{false, true} {
		fast, ref, fe, re := decodeBoth(t, buildPNG(t, s), zlibOnly)
		if fe != nil || re != nil {
			t.Fatalf("extra data: fast path: %v; libpng: %v", fe, re)
		}
		if err := samePixels(fast, ref); err != nil {
			t.Fatalf("extra data: %v", err)
		}
	}
}
