package imgconv

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// lossyWebP is a 150×100 opaque lossy WebP from golang.org/x/image's test data (see
// testdata/README.md).
const lossyWebP = "testdata/blue-purple-pink.lossy.webp"

// gradient is a smooth, opaque test picture: red rises left to right, green top to bottom.
func gradient(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / max(1, w-1)), uint8(y * 255 / max(1, h-1)), 128, 255})
		}
	}
	return m
}

// picture is a noisy, photo-like test picture made by Generate's renderer.
func picture(w, h int, seed uint64) *image.NRGBA {
	return render(rand.New(rand.NewPCG(seed, 0)), w, h, nil)
}

func mustEncode(t testing.TB, enc func(*bytes.Buffer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := enc(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(t testing.TB, m image.Image) []byte {
	return mustEncode(t, func(b *bytes.Buffer) error { return png.Encode(b, m) })
}

func encodeJPEG(t testing.TB, m image.Image) []byte {
	return mustEncode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, m, &jpeg.Options{Quality: 95}) })
}

func encodeGIF(t testing.TB, m image.Image) []byte {
	return mustEncode(t, func(b *bytes.Buffer) error { return gif.Encode(b, m, nil) })
}

func encodeBMP(t testing.TB, m image.Image) []byte {
	return mustEncode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, m) })
}

func encodeTIFF(t testing.TB, m image.Image) []byte {
	return mustEncode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, m, &tiff.Options{Compression: tiff.Deflate}) })
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeJPEG decodes Convert's output, failing the test if it is not a JPEG.
func decodeJPEG(t testing.TB, b []byte) image.Image {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("output is not a valid JPEG: %v", err)
	}
	return m
}

// meanAbsDiff compares two images' RGB over a's bounds, in 8-bit units.
func meanAbsDiff(a, b image.Image) float64 {
	r := a.Bounds()
	var sum, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			sum += absDiff8(ar, br) + absDiff8(ag, bg) + absDiff8(ab, bb)
			n += 3
		}
	}
	return sum / n
}

func absDiff8(a, b uint32) float64 {
	d := float64(a>>8) - float64(b>>8)
	if d < 0 {
		return -d
	}
	return d
}

// pngWithHeader builds a PNG whose IHDR claims w×h 8-bit RGB, followed by a short but well-formed
// IDAT (a zlib stream of 64 zero bytes: far too little pixel data) and no IEND.
func pngWithHeader(w, h uint32) []byte {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) { pngChunk(&out, typ, data) }
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // bit depth 8, colour type RGB; compression, filter, interlace 0
	chunk("IHDR", ihdr)
	// zlib: header 78 01, one stored block of 64 zero bytes, Adler-32 of 64 zeros (0x00400001).
	idat := []byte{0x78, 0x01, 0x01, 0x40, 0x00, 0xbf, 0xff}
	idat = append(idat, make([]byte, 64)...)
	idat = append(idat, 0x00, 0x40, 0x00, 0x01)
	chunk("IDAT", idat)
	return out.Bytes()
}

// riffChunk encodes one RIFF chunk, padded to an even length.
func riffChunk(fourcc string, data []byte) []byte {
	b := make([]byte, 8, 8+len(data)+1)
	copy(b, fourcc)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(data)))
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func riffWebP(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := []byte("RIFF\x00\x00\x00\x00")
	binary.LittleEndian.PutUint32(out[4:], uint32(len(body)))
	return append(out, body...)
}

// webpWithAlpha wraps the VP8 bitstream of the lossy test file in an extended (VP8X) WebP with an
// uncompressed ALPH chunk giving each pixel's alpha, so that it decodes to *image.NYCbCrA.
func webpWithAlpha(t testing.TB, alpha func(x, y int) uint8) []byte {
	t.Helper()
	src := readFile(t, lossyWebP)
	if string(src[12:16]) != "VP8 " {
		t.Fatalf("%s: want a simple VP8 file", lossyWebP)
	}
	vp8 := src[20 : 20+binary.LittleEndian.Uint32(src[16:20])]
	const w, h = 150, 100
	vp8x := make([]byte, 10)
	vp8x[0] = 0x10 // alpha present
	putUint24 := func(b []byte, v int) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }
	putUint24(vp8x[4:], w-1)
	putUint24(vp8x[7:], h-1)
	alph := make([]byte, 1+w*h) // header 0: no compression, no filtering
	for y := range h {
		for x := range w {
			alph[1+y*w+x] = alpha(x, y)
		}
	}
	return riffWebP(riffChunk("VP8X", vp8x), riffChunk("ALPH", alph), riffChunk("VP8 ", vp8))
}

// bitWriter packs bits least-significant first, as VP8L reads them.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nbits > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc, w.nbits = 0, 0
	}
	return w.buf
}

// lossless encodes m as a lossless (VP8L) WebP, which decodes to *image.NRGBA. To keep the encoder
// tiny it uses "simple" prefix codes, which allow at most two distinct values per channel; m must
// respect that.
func lossless(t testing.TB, m *image.NRGBA) []byte {
	t.Helper()
	w, h := m.Rect.Dx(), m.Rect.Dy()
	// VP8L stores ARGB; the prefix codes are for green, red, blue, alpha (and distance).
	chans := [4]int{1, 0, 2, 3} // NRGBA byte offsets in code order
	var syms [4][]uint8
	for y := range h {
		for x := range w {
			p := m.Pix[y*m.Stride+4*x:]
			for i, c := range chans {
				v := p[c]
				if len(syms[i]) == 0 || (syms[i][0] != v && (len(syms[i]) == 1 || syms[i][1] != v)) {
					syms[i] = append(syms[i], v)
				}
			}
		}
	}
	var bw bitWriter
	bw.write(0x2f, 8) // signature
	bw.write(uint64(w-1), 14)
	bw.write(uint64(h-1), 14)
	bw.write(1, 1) // alpha is used
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	simple := func(s []uint8) {
		if len(s) > 2 {
			t.Fatalf("lossless: a channel has %d distinct values; at most 2 allowed", len(s))
		}
		bw.write(1, 1)                // simple code
		bw.write(uint64(len(s)-1), 1) // number of symbols - 1
		bw.write(1, 1)                // first symbol is 8 bits
		bw.write(uint64(s[0]), 8)     // first symbol: code 0
		if len(s) == 2 {
			bw.write(uint64(s[1]), 8) // second symbol: code 1
		}
	}
	for i := range syms {
		simple(syms[i])
	}
	simple([]uint8{0}) // distance code, unused
	for y := range h {
		for x := range w {
			p := m.Pix[y*m.Stride+4*x:]
			for i, c := range chans {
				if len(syms[i]) == 2 {
					if p[c] == syms[i][1] {
						bw.write(1, 1)
					} else {
						bw.write(0, 1)
					}
				}
			}
		}
	}
	return riffWebP(riffChunk("VP8L", bw.bytes()))
}

// pngChunk writes a PNG chunk: length, type, data and CRC.
func pngChunk(out *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	out.Write(n[:])
	out.WriteString(typ)
	out.Write(data)
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	out.Write(n[:])
}
