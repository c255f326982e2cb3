package imgconv

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/png"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/webp"
)

func TestConvertRoundTrip(t *testing.T) {
	const w, h = 97, 61 // odd sizes catch off-by-one and subsampling edge errors
	src := gradient(w, h)
	webpSrc := readFile(t, lossyWebP)
	webpImg, err := webp.Decode(bytes.NewReader(webpSrc))
	if err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(src.Rect)
	draw.Draw(gray, gray.Rect, src, image.Point{}, draw.Src)

	tests := []struct {
		name, format string
		data         []byte
		want         image.Image // what the output should look like
		maxDiff      float64     // mean absolute RGB error allowed, 8-bit units
	}{
		{"png", "png", encodePNG(t, src), src, 3},
		{"png gray", "png", encodePNG(t, gray), gray, 3},
		{"jpeg", "jpeg", encodeJPEG(t, src), src, 4},
		// GIF quantises to a palette (Plan 9, dithered), hence the looser bound.
		{"gif", "gif", encodeGIF(t, src), src, 12},
		{"bmp", "bmp", encodeBMP(t, src), src, 3},
		{"tiff", "tiff", encodeTIFF(t, src), src, 3},
		{"webp", "webp", webpSrc, webpImg, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, info, err := Convert(tt.data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wb := tt.want.Bounds()
			if info.Format != tt.format || info.Width != wb.Dx() || info.Height != wb.Dy() {
				t.Errorf("info = %+v, want %s %dx%d", info, tt.format, wb.Dx(), wb.Dy())
			}
			m := decodeJPEG(t, out)
			if m.Bounds() != wb {
				t.Fatalf("output bounds %v, want %v", m.Bounds(), wb)
			}
			if d := meanAbsDiff(tt.want, m); d > tt.maxDiff {
				t.Errorf("output differs from input by %.2f on average, want at most %.2f", d, tt.maxDiff)
			}
		})
	}
}

// TestConvertGrayStaysGray checks that gray input is encoded as a one-component JPEG (no needless
// conversion to colour).
func TestConvertGrayStaysGray(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 40, 30))
	for i := range g.Pix {
		g.Pix[i] = uint8(i)
	}
	out, _, err := Convert(encodePNG(t, g), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeJPEG(t, out); m.ColorModel() != color.GrayModel {
		t.Errorf("output colour model %T, want gray", m.ColorModel())
	}
}

// white is the minimum channel value accepted as "white" after JPEG's lossy round trip.
const white = 250

func assertAllWhite(t *testing.T, m image.Image, r image.Rectangle) {
	t.Helper()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := m.At(x, y).RGBA()
			if cr>>8 < white || cg>>8 < white || cb>>8 < white {
				t.Fatalf("pixel (%d,%d) = %d,%d,%d, want white", x, y, cr>>8, cg>>8, cb>>8)
			}
		}
	}
}

func TestConvertTransparentIsWhite(t *testing.T) {
	// Fully transparent black: a naive conversion that drops alpha yields black.
	clear := image.NewNRGBA(image.Rect(0, 0, 48, 32))
	premul := image.NewRGBA(clear.Rect) // all zero: transparent, premultiplied
	pal := image.NewPaletted(clear.Rect, color.Palette{color.NRGBA{0, 0, 0, 0}, color.Black})
	lossless := lossless(t, image.NewNRGBA(image.Rect(0, 0, 48, 32)))
	tests := []struct {
		name string
		data []byte
	}{
		{"png nrgba", encodePNG(t, clear)},
		{"png paletted", encodePNG(t, pal)},
		{"gif", encodeGIF(t, pal)},
		{"tiff premultiplied", encodeTIFF(t, premul)},
		{"webp lossless", lossless},
		{"webp lossy with alpha", webpWithAlpha(t, func(x, y int) uint8 { return 0 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := Convert(tt.data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			m := decodeJPEG(t, out)
			assertAllWhite(t, m, m.Bounds())
		})
	}
}

func TestConvertTranslucentBlendsWithWhite(t *testing.T) {
	// Half-transparent pure red over white is pink: (255, 128, 128).
	red := color.NRGBA{255, 0, 0, 128}
	m := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	draw.Draw(m, m.Rect, image.NewUniform(red), image.Point{}, draw.Src)
	tests := map[string][]byte{
		"png":  encodePNG(t, m),
		"tiff": encodeTIFF(t, m),
		"webp": lossless(t, m),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			out, _, err := Convert(data, Options{Quality: 100})
			if err != nil {
				t.Fatal(err)
			}
			r, g, b, _ := decodeJPEG(t, out).At(16, 16).RGBA()
			if !near(r>>8, 255, 3) || !near(g>>8, 128, 3) || !near(b>>8, 128, 3) {
				t.Errorf("centre pixel = %d,%d,%d, want about 255,128,128", r>>8, g>>8, b>>8)
			}
		})
	}
}

func near(got, want, tol uint32) bool {
	return got+tol >= want && got <= want+tol
}

func TestConvertWebPAlphaKeepsOpaquePart(t *testing.T) {
	// Left half opaque, right half transparent.
	data := webpWithAlpha(t, func(x, y int) uint8 {
		if x < 75 {
			return 255
		}
		return 0
	})
	orig, err := webp.Decode(bytes.NewReader(readFile(t, lossyWebP)))
	if err != nil {
		t.Fatal(err)
	}
	out, info, err := Convert(data, Options{Quality: 95})
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 150 || info.Height != 100 {
		t.Fatalf("info = %+v", info)
	}
	m := decodeJPEG(t, out)
	assertAllWhite(t, m, image.Rect(80, 0, 150, 100)) // away from the edge's ringing
	left := image.Rect(0, 0, 70, 100)
	if d := meanAbsDiff(orig.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(left), m); d > 4 {
		t.Errorf("opaque half differs from the original by %.2f on average", d)
	}
}

func TestConvertGIFFirstFrameOnScreen(t *testing.T) {
	// A 100×80 screen whose first frame covers only (10,10)-(50,40); the second frame, which must
	// be ignored, covers everything in black.
	pal := color.Palette{color.Black, color.RGBA{0, 0, 255, 255}}
	first := image.NewPaletted(image.Rect(10, 10, 50, 40), pal)
	for i := range first.Pix {
		first.Pix[i] = 1 // blue
	}
	second := image.NewPaletted(image.Rect(0, 0, 100, 80), pal)
	var buf bytes.Buffer
	err := gif.EncodeAll(&buf, &gif.GIF{
		Image:  []*image.Paletted{first, second},
		Delay:  []int{10, 10},
		Config: image.Config{ColorModel: pal, Width: 100, Height: 80},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, info, err := Convert(buf.Bytes(), Options{Quality: 100})
	if err != nil {
		t.Fatal(err)
	}
	if info != (Info{Format: "gif", Width: 100, Height: 80}) {
		t.Fatalf("info = %+v", info)
	}
	m := decodeJPEG(t, out)
	assertAllWhite(t, m, image.Rect(0, 0, 100, 6))
	assertAllWhite(t, m, image.Rect(56, 0, 100, 80))
	r, g, b, _ := m.At(30, 25).RGBA()
	if r>>8 > 10 || g>>8 > 10 || b>>8 < 245 {
		t.Errorf("inside the first frame: %d,%d,%d, want blue", r>>8, g>>8, b>>8)
	}
}

// TestOpaqueMatchesDraw checks each fast path of opaque against the general one: drawing the
// image over white with image/draw.
func TestOpaqueMatchesDraw(t *testing.T) {
	r := image.Rect(0, 0, 37, 23)
	fill := func(m draw.Image) draw.Image {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				a := uint8((x*7 + y*11) % 256)
				if x%5 == 0 {
					a = 255
				} else if x%7 == 0 {
					a = 0
				}
				m.Set(x, y, color.NRGBA{uint8(x * 6), uint8(y * 10), uint8(x * y), a})
			}
		}
		return m
	}
	pal := color.Palette{color.NRGBA{}, color.NRGBA{255, 0, 0, 128}, color.NRGBA{0, 200, 50, 255}, color.Gray{77}}
	paletted := image.NewPaletted(r, pal)
	for i := range paletted.Pix {
		paletted.Pix[i] = uint8(i % len(pal))
	}
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	nycca := image.NewNYCbCrA(r, image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i], nycca.Y[i], nycca.A[i] = uint8(i), uint8(i), uint8(i*3)
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = uint8(i*5), uint8(255-i)
		nycca.Cb[i], nycca.Cr[i] = uint8(i*5), uint8(255-i)
	}
	cmyk := image.NewCMYK(r)
	for i := range cmyk.Pix {
		cmyk.Pix[i] = uint8(i * 13)
	}
	images := map[string]image.Image{
		"RGBA":     fill(image.NewRGBA(r)),
		"NRGBA":    fill(image.NewNRGBA(r)),
		"RGBA64":   fill(image.NewRGBA64(r)),
		"NRGBA64":  fill(image.NewNRGBA64(r)),
		"Gray":     fill(image.NewGray(r)),
		"Gray16":   fill(image.NewGray16(r)),
		"Alpha":    fill(image.NewAlpha(r)),
		"Paletted": paletted,
		"YCbCr":    ycc,
		"NYCbCrA":  nycca,
		"CMYK":     cmyk,
	}
	for name, m := range images {
		t.Run(name, func(t *testing.T) {
			want := image.NewRGBA(r)
			draw.Draw(want, r, image.White, image.Point{}, draw.Src)
			draw.Draw(want, r, m, r.Min, draw.Over)
			got := opaque(m) // may modify m in place: want is computed first
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					gr, gg, gb, ga := got.At(x, y).RGBA()
					wr, wg, wb, _ := want.At(x, y).RGBA()
					if ga != 0xffff {
						t.Fatalf("(%d,%d): alpha %#x, want opaque", x, y, ga)
					}
					// 1 unit of rounding; 2 for the YCbCr conversions.
					if !near(gr>>8, wr>>8, 2) || !near(gg>>8, wg>>8, 2) || !near(gb>>8, wb>>8, 2) {
						t.Fatalf("(%d,%d) = %d,%d,%d, want %d,%d,%d", x, y, gr>>8, gg>>8, gb>>8, wr>>8, wg>>8, wb>>8)
					}
				}
			}
			switch got.(type) {
			case *image.RGBA, *image.YCbCr, *image.Gray:
			default:
				t.Errorf("opaque returned %T, want a type jpeg.Encode handles directly", got)
			}
		})
	}
}

func TestOpaquePaletteIndexOutOfRange(t *testing.T) {
	p := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.White})
	p.Pix[1] = 200 // beyond the palette: image.Paletted.At would panic
	got := opaque(p)
	if r, g, b, _ := got.At(0, 0).RGBA(); r>>8 != 255 || g>>8 != 255 || b>>8 != 255 {
		t.Errorf("index 0: %d,%d,%d, want white", r>>8, g>>8, b>>8)
	}
	if r, g, b, _ := got.At(1, 0).RGBA(); r|g|b != 0 {
		t.Errorf("index 200: %d,%d,%d, want black", r>>8, g>>8, b>>8)
	}
}

func TestOpaqueNoCopy(t *testing.T) {
	r := image.Rect(0, 0, 8, 8)
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio444)
	gray := image.NewGray(r)
	rgba := image.NewRGBA(r)
	draw.Draw(rgba, r, image.Black, image.Point{}, draw.Src)
	nrgba := image.NewNRGBA(r)
	draw.Draw(nrgba, r, image.NewUniform(color.NRGBA{1, 2, 3, 100}), image.Point{}, draw.Src)
	for _, m := range []image.Image{ycc, gray, rgba} {
		if got := opaque(m); got != m {
			t.Errorf("opaque(%T) made a copy", m)
		}
	}
	if got := opaque(nrgba).(*image.RGBA); &got.Pix[0] != &nrgba.Pix[0] {
		t.Error("opaque(*image.NRGBA) copied the pixels instead of compositing in place")
	}
}

func TestConvertQuality(t *testing.T) {
	data := encodePNG(t, picture(320, 240, 1))
	sizes := map[int]int{}
	for _, q := range []int{30, 90, 95} {
		out, _, err := Convert(data, Options{Quality: q})
		if err != nil {
			t.Fatal(err)
		}
		decodeJPEG(t, out)
		sizes[q] = len(out)
	}
	if !(sizes[30] < sizes[90] && sizes[90] < sizes[95]) {
		t.Errorf("sizes by quality = %v, want increasing", sizes)
	}
	def, _, err := Convert(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(def) != sizes[DefaultQuality] {
		t.Errorf("zero Quality gave %d bytes, quality %d gave %d: want the default", len(def), DefaultQuality, sizes[DefaultQuality])
	}
}

func TestConvertRefusesBombWithoutAllocating(t *testing.T) {
	bomb := pngWithHeader(50000, 50000) // 2.5 gigapixels, 10 GB as RGBA; the file is ~130 bytes
	if _, err := png.DecodeConfig(bytes.NewReader(bomb)); err != nil {
		t.Fatalf("test input: header does not parse: %v", err)
	}

	_, info, err := Convert(bomb, Options{})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "max_pixels") {
		t.Fatalf("err = %v, want ErrTooLarge mentioning max_pixels", err)
	}
	if want := "image 50000x50000 (2500.0 MP) exceeds max_pixels 100.0 MP"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if info.Format != "png" {
		t.Errorf("info.Format = %q, want png", info.Format)
	}

	const runs = 20
	perRun := allocatedBytes(runs, func() { _, _, _ = Convert(bomb, Options{}) })
	if perRun > 64<<10 {
		t.Errorf("refusing the bomb allocated %d bytes per call, want < 64 KiB", perRun)
	}
	t.Logf("refusing a 50000x50000 PNG allocated %d bytes per call", perRun)

	// Control: the same measurement sees the decoder's allocation for an image within the limit
	// (4000×4000: 48 MB as RGB, 64 MB as RGBA), so the bound above is meaningful.
	big := pngWithHeader(4000, 4000)
	var cerr error
	perRun = allocatedBytes(1, func() { _, _, cerr = Convert(big, Options{}) })
	if !errors.Is(cerr, ErrCorrupt) {
		t.Fatalf("control: err = %v, want ErrCorrupt (too little pixel data)", cerr)
	}
	if perRun < 40<<20 {
		t.Errorf("control: decoding a 4000x4000 PNG allocated only %d bytes; the measurement is broken", perRun)
	}
}

// allocatedBytes returns the bytes allocated per call of f, averaged over runs.
func allocatedBytes(runs int, f func()) uint64 {
	f() // warm up: one-time initialisation is not the call's cost
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func TestConvertSizeLimits(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		maxPixels int64
		want      string
	}{
		{"over a custom limit", pngWithHeader(1001, 1000), 1_000_000, "image 1001x1000 (1.0 MP) exceeds max_pixels 1.0 MP"},
		{"over JPEG's side limit", pngWithHeader(70000, 10), 0, "image 70000x10 exceeds JPEG's limit of 65535 pixels per side"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Convert(tt.data, Options{MaxPixels: tt.maxPixels})
			if !errors.Is(err, ErrTooLarge) || err.Error() != tt.want {
				t.Errorf("err = %v, want ErrTooLarge %q", err, tt.want)
			}
		})
	}
	// Exactly at the limit is allowed (and then fails for lack of pixel data).
	if _, _, err := Convert(pngWithHeader(1000, 1000), Options{MaxPixels: 1_000_000}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("at the limit: err = %v, want ErrCorrupt", err)
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		w, h int
		max  int64
		want error
	}{
		{1, 1, 1, nil},
		{65535, 1, DefaultMaxPixels, nil},
		{10000, 10000, DefaultMaxPixels, nil},
		{10000, 10001, DefaultMaxPixels, ErrTooLarge},
		{0, 10, DefaultMaxPixels, ErrCorrupt},
		{10, 0, DefaultMaxPixels, ErrCorrupt},
		{-5, 10, DefaultMaxPixels, ErrCorrupt},
		{10, -5, DefaultMaxPixels, ErrCorrupt},
		// w*h overflows int64 (and wraps to 0 here): must still be refused.
		{1 << 32, 1 << 32, DefaultMaxPixels, ErrTooLarge},
		{math.MaxInt, math.MaxInt, math.MaxInt64, ErrTooLarge},
		{math.MaxInt, 2, math.MaxInt64, ErrTooLarge},
		{65536, 1, math.MaxInt64, ErrTooLarge},
	}
	for _, tt := range tests {
		err := checkSize(tt.w, tt.h, tt.max)
		if (tt.want == nil && err != nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("checkSize(%d, %d, %d) = %v, want %v", tt.w, tt.h, tt.max, err, tt.want)
		}
	}
}

func TestConvertBadInput(t *testing.T) {
	pngData := encodePNG(t, picture(64, 48, 2))
	jpegData := encodeJPEG(t, picture(64, 48, 2))
	gifData := encodeGIF(t, picture(64, 48, 2))
	bmpData := encodeBMP(t, picture(64, 48, 2))
	tiffData := encodeTIFF(t, picture(64, 48, 2))
	webpData := readFile(t, lossyWebP)
	zeroWidth := pngWithHeader(0, 10)

	tests := []struct {
		name string
		data []byte
		kind error
		msg  string // a substring of the message
	}{
		{"nil", nil, ErrNotImage, "not an image: empty input"},
		{"empty", []byte{}, ErrNotImage, "not an image: empty input"},
		{"text", []byte("hello, world\n"), ErrNotImage, "not an image: unknown format (starts with 68 65 6c 6c 6f 2c 20 77 …)"},
		{"one byte", []byte{0xff}, ErrNotImage, "not an image: unknown format (starts with ff)"},
		{"png signature only", pngData[:8], ErrCorrupt, "truncated PNG: unexpected EOF"},
		{"png truncated", pngData[:len(pngData)/2], ErrCorrupt, "truncated PNG: "},
		{"png without IEND", pngData[:len(pngData)-12], ErrCorrupt, "truncated PNG"},
		{"png zero width", zeroWidth, ErrCorrupt, "corrupt PNG"},
		{"png bad crc", flip(pngData, 29), ErrCorrupt, "corrupt PNG: "},
		{"jpeg truncated", jpegData[:len(jpegData)/2], ErrCorrupt, "JPEG"},
		{"jpeg SOI only", jpegData[:2], ErrCorrupt, "truncated JPEG"},
		{"gif truncated", gifData[:len(gifData)/2], ErrCorrupt, "GIF"},
		{"gif header only", gifData[:6], ErrCorrupt, "truncated GIF"},
		{"bmp truncated", bmpData[:len(bmpData)/2], ErrCorrupt, "truncated BMP"},
		{"tiff truncated", tiffData[:len(tiffData)/2], ErrCorrupt, "TIFF"},
		{"tiff header only", tiffData[:8], ErrCorrupt, "TIFF"},
		{"tiff damaged", flipRange(tiffData, 8, 64), ErrCorrupt, "TIFF"},
		{"jpeg damaged", flipRange(jpegData, 2, 40), ErrCorrupt, "corrupt JPEG"},
		{"webp truncated", webpData[:len(webpData)/2], ErrCorrupt, "WebP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := Convert(tt.data, Options{})
			if err == nil {
				t.Fatalf("no error; output %d bytes", len(out))
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.msg)
			}
			if out != nil {
				t.Errorf("output %d bytes alongside an error", len(out))
			}
		})
	}
	// Truncation is visible to errors.Is through the wrapping, even when the decoder called it a
	// format error; damage is not truncation.
	for _, data := range [][]byte{pngData[:len(pngData)/2], jpegData[:len(jpegData)-2], gifData[:6], webpData[:100]} {
		if _, _, err := Convert(data, Options{}); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "truncated ") {
			t.Errorf("err = %v, want truncation wrapping io.ErrUnexpectedEOF", err)
		}
	}
	if _, _, err := Convert(flip(pngData, 29), Options{}); errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("bad checksum: err = %v, want no io.ErrUnexpectedEOF", err)
	}
}

// flipRange returns a copy of b with bytes [i, j) inverted.
func flipRange(b []byte, i, j int) []byte {
	c := bytes.Clone(b)
	for k := i; k < j; k++ {
		c[k] ^= 0xff
	}
	return c
}

// flip returns a copy of b with byte i inverted.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

func TestConvertInvalidOptions(t *testing.T) {
	data := encodePNG(t, gradient(8, 8))
	for _, o := range []Options{{Quality: -1}, {Quality: 101}, {MaxPixels: -1}} {
		if _, _, err := Convert(data, o); err == nil {
			t.Errorf("Convert with %+v: no error", o)
		}
	}
}

func TestGuardRecoversPanic(t *testing.T) {
	err := guard(func() error {
		var s []int
		_ = s[3]
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "panicked: runtime error: index out of range") {
		t.Fatalf("err = %v", err)
	}
	sentinel := errors.New("plain")
	if err := guard(func() error { return sentinel }); err != sentinel {
		t.Errorf("err = %v, want the function's own error", err)
	}
	c := &codecs[0]
	if e := decodeErr(c, encodePNG(t, gradient(2, 2)), err); !errors.Is(e, ErrCorrupt) || !strings.HasPrefix(e.Error(), "corrupt PNG: panicked: ") {
		t.Errorf("decodeErr = %v", e)
	}
}

func TestSniff(t *testing.T) {
	tests := map[string]string{
		"\x89PNG\r\n\x1a\nrest":              "png",
		"\xff\xd8\xff\xe0":                   "jpeg",
		"GIF87a..":                           "gif",
		"GIF89a..":                           "gif",
		"BM\x01\x02\x03\x04\x00\x00\x00\x00": "bmp",
		"II*\x00":                            "tiff",
		"MM\x00*":                            "tiff",
		"RIFF\x00\x00\x00\x00WEBPVP8L":       "webp",
		"RIFF\x00\x00\x00\x00WAVEfmt ":       "",
		"\x89PNG":                            "",
		"BM\x01\x02\x03\x04\x00\x00\x00\x01": "",
	}
	for in, want := range tests {
		got := ""
		if c := sniff([]byte(in)); c != nil {
			got = c.name
		}
		if got != want {
			t.Errorf("sniff(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkConvert(b *testing.B) {
	// About one megapixel, photo-like, with a transparent vignette: the alpha path.
	m := picture(1155, 866, 3)
	for y := range 866 {
		for x := range 1155 {
			u, v := float64(x)/577-1, float64(y)/433-1
			m.Pix[y*m.Stride+4*x+3] = clamp8(vignette(u, v) * 255)
		}
	}
	inputs := []struct {
		name string
		data []byte
	}{
		{"png-rgba", encodePNG(b, m)},
		{"jpeg", encodeJPEG(b, picture(1155, 866, 3))},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Convert(in.data, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
