package imgconv

import (
	"bytes"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"math/rand/v2"
	"reflect"
	"testing"
)

// gifSamples returns GIFs of several shapes: global and local palettes, transparency (in and
// out of the palette's range), small literal widths, a frame smaller than the screen, an
// interlaced frame, extensions before the frame, and two frames.
func gifSamples(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	enc := func(name string, g *gif.GIF) {
		var b bytes.Buffer
		if err := gif.EncodeAll(&b, g); err != nil {
			t.Fatal(err)
		}
		out[name] = b.Bytes()
	}
	pic := func(w, h int, pal color.Palette, seed uint64) *image.Paletted {
		m := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		draw.FloydSteinberg.Draw(m, m.Rect, picture(w, h, seed), image.Point{})
		return m
	}
	web := pic(97, 61, palette.WebSafe, 1)
	enc("websafe", &gif.GIF{Image: []*image.Paletted{web}, Delay: []int{0}})
	two := pic(40, 30, color.Palette{color.Black, color.White}, 2) // literal width 2
	enc("two-colours", &gif.GIF{Image: []*image.Paletted{two}, Delay: []int{0}})
	big := image.NewPaletted(image.Rect(0, 0, 300, 200), palette.Plan9)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range big.Pix {
		big.Pix[i] = uint8(rng.IntN(256)) // noise: the code table fills and is cleared
	}
	enc("noise", &gif.GIF{Image: []*image.Paletted{big}, Delay: []int{0}})
	flat := image.NewPaletted(image.Rect(0, 0, 500, 400), palette.Plan9) // long runs: long chains
	enc("flat", &gif.GIF{Image: []*image.Paletted{flat}, Delay: []int{0}})
	small := pic(20, 10, palette.WebSafe, 3)
	small.Rect = small.Rect.Add(image.Pt(5, 7))
	enc("offset-frame", &gif.GIF{Image: []*image.Paletted{small}, Delay: []int{0}, Config: image.Config{Width: 40, Height: 30, ColorModel: color.Palette(palette.WebSafe)}})
	local := pic(30, 20, color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}, color.Transparent}, 4)
	enc("local-palette-transparent", &gif.GIF{Image: []*image.Paletted{local, pic(30, 20, palette.WebSafe, 5)}, Delay: []int{0, 0},
		Config: image.Config{Width: 30, Height: 20, ColorModel: color.Palette(palette.WebSafe)}})
	enc("animated", &gif.GIF{Image: []*image.Paletted{pic(50, 40, palette.WebSafe, 6), pic(50, 40, palette.WebSafe, 7)}, Delay: []int{10, 10}, LoopCount: 3})

	// Interlaced: the same bytes with the interlace bit set (the rows come out reordered).
	il := bytes.Clone(out["websafe"])
	if i := bytes.IndexByte(il[13+3*256:], 0x2c); i >= 0 {
		il[13+3*256+i+9] |= 0x40
		out["interlaced"] = il
	}
	// A transparent index beyond a 4-entry palette.
	tr := bytes.Clone(out["two-colours"])
	if i := bytes.Index(tr, []byte{0x21, 0xf9, 0x04}); i >= 0 {
		tr[i+3] |= 1
		tr[i+6] = 200
		out["transparent-out-of-range"] = tr
	} else {
		gce := []byte{0x21, 0xf9, 0x04, 0x01, 0, 0, 200, 0}
		j := 13 + 3*2
		out["transparent-out-of-range"] = append(append(append([]byte(nil), tr[:j]...), gce...), tr[j:]...)
	}
	// Sub-blocks after the end code: one byte is tolerated, two are too much image data.
	w := out["websafe"]
	if len(w) > 2 && w[len(w)-1] == 0x3b && w[len(w)-2] == 0 {
		end := len(w) - 2 // the image data's block terminator
		for name, extra := range map[string][]byte{"one-trailing-byte": {1, 0xaa}, "two-trailing-bytes": {2, 0xaa, 0xbb},
			"two-trailing-blocks": {1, 0xaa, 1, 0xbb}} {
			out[name] = append(append(append([]byte(nil), w[:end]...), extra...), w[end:]...)
		}
	}
	return out
}

// compareGIF decodes data with gifDecode and gif.Decode and fails unless both fail with the
// same words or both give the same frame.
func compareGIF(t *testing.T, name string, data []byte) {
	t.Helper()
	want, werr := gif.Decode(bytes.NewReader(data))
	got, gerr := gifDecode(data)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("%s: gifDecode error %v, image/gif %v", name, gerr, werr)
	}
	if werr != nil {
		return
	}
	g, w := got.(*image.Paletted), want.(*image.Paletted)
	if g.Rect != w.Rect || g.Stride != w.Stride || !bytes.Equal(g.Pix, w.Pix) || !reflect.DeepEqual(g.Palette, w.Palette) {
		t.Fatalf("%s: gifDecode gives %v (%d colours), image/gif %v (%d colours), or their pixels differ", name, g.Rect, len(g.Palette), w.Rect, len(w.Palette))
	}
}

// gifDecode is image/gif's first frame, image and error alike, for whole, truncated and damaged
// files.
func TestGIFDecodeMatchesImageGIF(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ok, failed int
	for name, data := range gifSamples(t) {
		compareGIF(t, name, data)
		for n := 0; n < len(data); n += max(1, len(data)/150) {
			compareGIF(t, name+" truncated", data[:n])
		}
		for range 400 {
			c := bytes.Clone(data)
			for range 1 + rng.IntN(4) {
				c[rng.IntN(len(c))] ^= byte(1 + rng.IntN(255))
			}
			compareGIF(t, name+" damaged", c)
			if _, err := gif.Decode(bytes.NewReader(c)); err == nil {
				ok++
			} else {
				failed++
			}
		}
	}
	// Both outcomes must have been exercised for the comparison to mean something.
	if ok < 100 || failed < 100 {
		t.Errorf("damaged samples: %d decoded, %d failed; want both common", ok, failed)
	}
}

// FuzzGIFDecode holds gifDecode to image/gif on any input.
//
//	go test -run '^$' -fuzz FuzzGIFDecode -fuzztime 60s ./stages/imgconv
func FuzzGIFDecode(f *testing.F) {
	for _, data := range gifSamples(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if cfg, err := gif.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width*cfg.Height > 1<<20 {
			return
		}
		compareGIF(t, "input", data)
	})
}
