//go:build cgo && !imgconv_purego

package imgconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// These tests hold the native codecs (codec_cgo.go) to the pure-Go ones they replace, and feed
// them damaged files in-process: a crash or abort in C would take the test binary down.

// nativeSamples are files from real encoders (Pillow, testdata/) and from Go's, covering the
// layouts the native decoders treat differently.
func nativeSamples(t testing.TB) map[string][]byte {
	s := map[string][]byte{
		"go-420.jpg":     encodeJPEG(t, picture(301, 203, 1)),
		"go-gray.jpg":    mustEncode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, grayOf(picture(64, 33, 2)), nil) }),
		"go-rgba.png":    encodePNG(t, picture(97, 45, 3)),
		"go-opaque.png":  encodePNG(t, onWhiteRGBA(picture(55, 70, 4))),
		"go-gray.png":    encodePNG(t, grayOf(picture(40, 31, 5))),
		"go-gray16.png":  encodePNG(t, gray16Of(picture(40, 31, 6))),
		"go-odd-1x1.png": encodePNG(t, picture(1, 1, 7)),
		"go-odd-1x1.jpg": encodeJPEG(t, picture(1, 1, 7)),
	}
	for _, name := range []string{"photo-444.jpg", "photo-422.jpg", "photo-420-progressive.jpg", "gray.jpg", "cmyk.jpg",
		"alpha.png", "palette.png", "interlaced.png", "rgb16.png", "gray-alpha16-interlaced.png"} {
		s[name] = readFile(t, filepath.Join("testdata", name))
	}
	return s
}

func grayOf(m image.Image) *image.Gray {
	g := image.NewGray(m.Bounds())
	draw.Draw(g, g.Rect, m, m.Bounds().Min, draw.Src)
	return g
}

func gray16Of(m image.Image) *image.Gray16 {
	g := image.NewGray16(m.Bounds())
	draw.Draw(g, g.Rect, m, m.Bounds().Min, draw.Src)
	return g
}

func onWhiteRGBA(m image.Image) *image.RGBA {
	r := image.NewRGBA(m.Bounds())
	draw.Draw(r, r.Rect, image.White, image.Point{}, draw.Src)
	draw.Draw(r, r.Rect, m, m.Bounds().Min, draw.Over)
	return r
}

// pureGo decodes with the standard library, as the CGO_ENABLED=0 build does.
func pureGo(data []byte) (image.Image, error) {
	if bytes.HasPrefix(data, []byte("\x89PNG")) {
		return png.Decode(bytes.NewReader(data))
	}
	return jpeg.Decode(bytes.NewReader(data))
}

func native(data []byte) (image.Image, error) {
	if bytes.HasPrefix(data, []byte("\x89PNG")) {
		return pngDecode(data)
	}
	return jpegDecode(data)
}

// psnr compares two images' RGB, composited onto white as Convert does, in dB (+Inf if equal).
func psnr(a, b image.Image) float64 {
	ra, rb := onWhiteRGBA(a), onWhiteRGBA(b)
	var se float64
	for i := range ra.Pix {
		if i%4 == 3 {
			continue
		}
		d := float64(ra.Pix[i]) - float64(rb.Pix[i])
		se += d * d
	}
	mse := se / float64(len(ra.Pix)/4*3)
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

func TestNativeCodecName(t *testing.T) {
	for _, want := range []string{"libjpeg-turbo ", "libpng 1.", "zlib "} {
		if !strings.Contains(Codec(), want) {
			t.Errorf("Codec() = %q, want it to name %q", Codec(), want)
		}
	}
}

// The native decoders see the same images as the pure-Go ones: the same dimensions, the same
// pixels for PNG (±1 where 16-bit samples are reduced to 8), and for JPEG the same up to the
// IDCT's rounding.
func TestNativeDecodeMatchesPureGo(t *testing.T) {
	for name, data := range nativeSamples(t) {
		t.Run(name, func(t *testing.T) {
			want, err := pureGo(data)
			if err != nil {
				t.Fatalf("pure Go: %v", err)
			}
			cfg, err := nativeConfig(data)
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			got, err := native(data)
			if err != nil {
				t.Fatalf("native: %v", err)
			}
			if got.Bounds() != want.Bounds() || cfg.Width != want.Bounds().Dx() || cfg.Height != want.Bounds().Dy() {
				t.Fatalf("native bounds %v, config %dx%d; pure Go %v", got.Bounds(), cfg.Width, cfg.Height, want.Bounds())
			}
			min := 45.0
			switch name {
			case "go-opaque.png", "go-gray.png", "interlaced.png":
				min = math.Inf(1) // 8-bit and opaque: the same pixels
			default:
				if strings.HasSuffix(name, ".png") {
					// 16-bit samples: the high byte here, rounded through draw there; alpha:
					// composited onto white at decoding here, through draw there.
					min = 50
				}
			}
			if p := psnr(got, want); p < min {
				t.Errorf("PSNR native vs pure Go = %.1f dB, want >= %.0f", p, min)
			}
		})
	}
}

func nativeConfig(data []byte) (image.Config, error) {
	if bytes.HasPrefix(data, []byte("\x89PNG")) {
		return pngConfig(data)
	}
	return jpegConfig(data)
}

// Convert through the native codecs gives what the pure-Go codecs give: the same dimensions, a
// baseline JPEG of the same kind (grey stays one component), about the same size, and as close
// to the source.
func TestNativeConvertMatchesPureGo(t *testing.T) {
	for name, data := range nativeSamples(t) {
		t.Run(name, func(t *testing.T) {
			src, err := pureGo(data)
			if err != nil {
				t.Fatal(err)
			}
			var ref bytes.Buffer
			if err := jpeg.Encode(&ref, opaque(src), &jpeg.Options{Quality: DefaultQuality}); err != nil {
				t.Fatal(err)
			}
			out, info, err := Convert(data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Width != src.Bounds().Dx() || info.Height != src.Bounds().Dy() {
				t.Fatalf("info %+v, source %v", info, src.Bounds())
			}
			got, want := decodeJPEG(t, out), decodeJPEG(t, ref.Bytes())
			if got.Bounds() != want.Bounds() {
				t.Fatalf("output %v, pure Go's %v", got.Bounds(), want.Bounds())
			}
			if _, g := got.(*image.Gray); g != isGray(want) {
				t.Errorf("output grey %v, pure Go's grey %v", g, isGray(want))
			}
			if !bytes.Contains(out, []byte{0xff, 0xc0}) || bytes.Contains(out, []byte{0xff, 0xc2}) {
				t.Error("not a baseline JPEG")
			}
			pGot, pWant := psnr(got, src), psnr(want, src)
			if pGot < min(pWant-0.5, 45) {
				t.Errorf("PSNR to the source: native %.2f dB, pure Go %.2f dB", pGot, pWant)
			}
			if p := psnr(got, want); p < 38 {
				t.Errorf("PSNR native output vs pure-Go output = %.1f dB, want >= 38", p)
			}
			if r := float64(len(out)) / float64(ref.Len()); r < 0.85 || r > 1.15 {
				t.Errorf("size %d bytes, pure Go %d (ratio %.2f)", len(out), ref.Len(), r)
			}
			t.Logf("%s: %d bytes (pure Go %d), PSNR to source %.1f dB (pure Go %.1f)", name, len(out), ref.Len(), pGot, pWant)
		})
	}
}

func isGray(m image.Image) bool { _, ok := m.(*image.Gray); return ok }

// The encoder takes every YCbCr layout (chroma brought to 4:2:0 like libjpeg's own
// downsampling), sub-images at odd offsets, and falls back to RGBA for anything else.
func TestNativeEncodeLayouts(t *testing.T) {
	src := gradient(45, 29)
	for _, r := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(src.Rect, r)
		for y := 0; y < src.Rect.Dy(); y++ {
			for x := 0; x < src.Rect.Dx(); x++ {
				c := src.NRGBAAt(x, y)
				yy, cb, cr := rgbToYCbCr(c.R, c.G, c.B)
				m.Y[m.YOffset(x, y)] = yy
				m.Cb[m.COffset(x, y)] = cb // the last pixel of each chroma cell wins: fine here
				m.Cr[m.COffset(x, y)] = cr
			}
		}
		for _, sub := range []image.Image{m, m.SubImage(image.Rect(4, 2, 41, 27))} {
			out, err := jpegEncode(sub, 95)
			if err != nil {
				t.Fatalf("%v %v: %v", r, sub.Bounds(), err)
			}
			var ref bytes.Buffer
			if err := jpeg.Encode(&ref, sub, &jpeg.Options{Quality: 95}); err != nil {
				t.Fatal(err)
			}
			got, want := decodeJPEG(t, out), decodeJPEG(t, ref.Bytes())
			if got.Bounds().Size() != sub.Bounds().Size() {
				t.Fatalf("%v %v: output %v", r, sub.Bounds(), got.Bounds())
			}
			if p := psnr(got, moveToOrigin(want)); p < 38 {
				t.Errorf("%v %v: PSNR vs the pure-Go encoder %.1f dB, want >= 38", r, sub.Bounds(), p)
			}
		}
	}
	// A type the encoder does not take in place.
	out, err := jpegEncode(image.NewCMYK(image.Rect(0, 0, 9, 7)), 90)
	if err != nil || decodeJPEG(t, out).Bounds() != image.Rect(0, 0, 9, 7) {
		t.Fatalf("CMYK: %v", err)
	}
}

func rgbToYCbCr(r, g, b uint8) (uint8, uint8, uint8) {
	yy := 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)
	cb := 128 - 0.168736*float64(r) - 0.331264*float64(g) + 0.5*float64(b)
	cr := 128 + 0.5*float64(r) - 0.418688*float64(g) - 0.081312*float64(b)
	c := func(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }
	return c(yy), c(cb), c(cr)
}

func moveToOrigin(m image.Image) image.Image {
	if m.Bounds().Min == (image.Point{}) {
		return m
	}
	return toRGBA(m)
}

// Pooled pixel buffers are never shared: converting the same files on several goroutines at once
// gives, byte for byte, what converting them one at a time gives.
func TestNativeConcurrentConvertsAreIndependent(t *testing.T) {
	var inputs [][]byte
	for _, d := range nativeSamples(t) {
		inputs = append(inputs, d)
	}
	want := make([][]byte, len(inputs))
	for i, d := range inputs {
		out, _, err := Convert(d, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 20 {
				i := (g*7 + round*3) % len(inputs)
				out, _, err := Convert(inputs[i], Options{})
				if err == nil && !bytes.Equal(out, want[i]) {
					err = fmt.Errorf("input %d: output differs from the serial conversion", i)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A JPEG whose header claims 60000×60000 is refused from the header, before anything the size of
// the image is allocated, in Go or in C.
func TestNativeJPEGBombRefusedFromHeader(t *testing.T) {
	data := encodeJPEG(t, picture(16, 16, 1))
	sof := bytes.Index(data, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("test input: no SOF0")
	}
	bomb := bytes.Clone(data)
	binary.BigEndian.PutUint16(bomb[sof+5:], 60000) // height
	binary.BigEndian.PutUint16(bomb[sof+7:], 60000) // width
	cfg, err := jpegConfig(bomb)
	if err != nil || cfg.Width != 60000 || cfg.Height != 60000 {
		t.Fatalf("jpegConfig = %+v, %v", cfg, err)
	}
	_, _, err = Convert(bomb, Options{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if n := allocatedBytes(10, func() { _, _, _ = Convert(bomb, Options{}) }); n > 64<<10 {
		t.Errorf("refusing the bomb allocated %d bytes per call", n)
	}
}

// libjpeg's and libpng's error paths: truncated files, flipped bytes and garbage after a valid
// signature all come back as errors (or, for damage the format cannot see, as an image of the
// header's size), never as a crash.
func TestNativeDamagedFiles(t *testing.T) {
	samples := nativeSamples(t)
	if photo := realPhoto(t); photo != nil {
		samples["real photo"] = photo
	}
	for name, data := range samples {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(len(data)), 9))
			var damaged [][]byte
			step := max(1, len(data)/97)
			for n := 0; n < len(data); n += step {
				damaged = append(damaged, data[:n]) // truncated
			}
			flips := 200
			if len(data) > 64<<10 {
				flips = 60 // a real photograph: fewer, larger runs
			}
			for range flips {
				c := bytes.Clone(data)
				for range 1 + rng.IntN(8) {
					c[rng.IntN(len(c))] ^= byte(1 + rng.IntN(255))
				}
				damaged = append(damaged, c)
			}
			garbage := make([]byte, 4096)
			for i := range garbage {
				garbage[i] = byte(rng.Uint32())
			}
			damaged = append(damaged, append(bytes.Clone(data[:min(len(data), 20)]), garbage...))
			var errs int
			for i, d := range damaged {
				out, info, err := Convert(d, Options{MaxPixels: 20 << 20})
				if err != nil {
					errs++
					if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrTooLarge) {
						t.Fatalf("damaged %d: error outside the documented set: %v", i, err)
					}
					continue
				}
				if cfg, err := jpeg.DecodeConfig(bytes.NewReader(out)); err != nil || cfg.Width != info.Width || cfg.Height != info.Height {
					t.Fatalf("damaged %d: output %+v, %v; info %+v", i, cfg, err, info)
				}
			}
			if errs < len(damaged)/3 {
				t.Errorf("only %d of %d damaged files failed", errs, len(damaged))
			}
		})
	}
}

// Truncation is recognised as such, with the library's own words.
func TestNativeErrorMessages(t *testing.T) {
	jpg := readFile(t, "testdata/photo-444.jpg")
	pngData := readFile(t, "testdata/interlaced.png")
	tests := []struct {
		name  string
		data  []byte
		eof   bool
		words string
	}{
		{"jpeg truncated in the scan", jpg[:len(jpg)*2/3], true, "truncated JPEG: premature end of file"},
		{"jpeg truncated in the header", jpg[:100], true, "truncated JPEG"},
		{"jpeg 12-bit", precision12(t, jpg), false, "corrupt JPEG: Unsupported JPEG data precision 12"},
		{"png truncated", pngData[:len(pngData)*2/3], true, "truncated PNG: unexpected EOF"},
		{"png bad IHDR crc", flip(pngData, 29), false, "corrupt PNG: IHDR: CRC error"},
		{"progressive jpeg truncated", readFile(t, "testdata/photo-420-progressive.jpg")[:1200], true, "truncated JPEG"},
	}
	for _, tt := range tests {
		_, _, err := Convert(tt.data, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.words) || errors.Is(err, io.ErrUnexpectedEOF) != tt.eof {
			t.Errorf("%s: err = %v, want %q (truncation %v)", tt.name, err, tt.words, tt.eof)
		}
	}
}

// precision12 returns a copy of a baseline JPEG whose frame header claims 12-bit samples.
func precision12(t *testing.T, jpg []byte) []byte {
	sof := bytes.Index(jpg, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("test input: no SOF0")
	}
	c := bytes.Clone(jpg)
	c[sof+4] = 12
	return c
}

// realPhoto returns a photograph from the directory the bench uses, if one is installed.
func realPhoto(t testing.TB) []byte {
	for _, p := range []string{"/usr/share/wallpapers/Autumn/contents/images/640x480.jpg", "/usr/share/wallpapers/Path/contents/images/640x480.jpg"} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	t.Log("no real photograph installed (plasma-workspace-wallpapers); the generated samples stand in")
	return nil
}
