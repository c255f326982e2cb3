package imgconv

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// FuzzConvert checks that Convert never panics and returns either an error from its documented
// set or a JPEG that decodes to the dimensions it reports.
func FuzzConvert(f *testing.F) {
	src := picture(24, 16, 5)
	alpha := picture(24, 16, 6)
	for i := 3; i < len(alpha.Pix); i += 4 {
		alpha.Pix[i] = uint8(i * 7)
	}
	pal := image.NewPaletted(src.Rect, color.Palette{color.NRGBA{}, color.NRGBA{200, 10, 10, 255}, color.NRGBA{10, 10, 200, 128}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	gray := image.NewGray16(src.Rect)
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 13)
	}
	two := image.NewNRGBA(image.Rect(0, 0, 9, 5)) // two values a channel, for the tiny VP8L encoder
	for i := range two.Pix {
		two.Pix[i] = uint8(255 * (i % 3 % 2))
	}
	seeds := [][]byte{
		encodePNG(f, src), encodePNG(f, alpha), encodePNG(f, pal), encodePNG(f, gray),
		encodeJPEG(f, src), encodeGIF(f, pal), encodeBMP(f, src), encodeBMP(f, alpha),
		encodeTIFF(f, src), encodeTIFF(f, alpha), encodeTIFF(f, pal),
		readFile(f, lossyWebP), lossless(f, two),
		webpWithAlpha(f, func(x, y int) uint8 { return uint8(x + y) }),
		pngWithHeader(60000, 60000), pngWithHeader(0, 1), nil, []byte("GIF89a"),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	o := Options{Quality: 50, MaxPixels: 1 << 20} // keep each execution's memory small
	f.Fuzz(func(t *testing.T, data []byte) {
		out, info, err := Convert(data, o)
		if err != nil {
			if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error outside the documented set: %v", err)
			}
			if out != nil {
				t.Fatalf("output alongside error %v", err)
			}
			return
		}
		if info.Format == "" || info.Width <= 0 || info.Height <= 0 || int64(info.Width)*int64(info.Height) > o.MaxPixels {
			t.Fatalf("bad info %+v", info)
		}
		m, err := jpeg.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("output is not a JPEG: %v", err)
		}
		if b := m.Bounds(); b.Dx() != info.Width || b.Dy() != info.Height {
			t.Fatalf("output is %v, info says %dx%d", b, info.Width, info.Height)
		}
	})
}

// FuzzDecoders feeds the PNG and JPEG codecs of this build directly (libjpeg-turbo and libpng
// with cgo, the standard library's without): reading a header either fails or gives dimensions,
// and decoding an image of those dimensions (small enough to keep each run cheap) either fails
// or gives an image of exactly that size. With cgo, a crash or abort in C ends the fuzzer:
// libjpeg's and libpng's error paths must come back as errors.
//
//	go test -run '^$' -fuzz FuzzDecoders -fuzztime 60s ./stages/imgconv
func FuzzDecoders(f *testing.F) {
	for _, name := range []string{"photo-444.jpg", "photo-422.jpg", "photo-420-progressive.jpg", "gray.jpg", "cmyk.jpg",
		"alpha.png", "palette.png", "interlaced.png", "rgb16.png", "gray-alpha16-interlaced.png"} {
		f.Add(readFile(f, "testdata/"+name))
	}
	f.Add(encodeJPEG(f, picture(19, 11, 1)))
	f.Add(encodePNG(f, picture(19, 11, 2)))
	f.Add(pngWithHeader(3000, 3000))
	codecs := []struct {
		name   string
		config func([]byte) (image.Config, error)
		decode func([]byte) (image.Image, error)
	}{{"png", pngConfig, pngDecode}, {"jpeg", jpegConfig, jpegDecode}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range codecs {
			cfg, err := c.config(data)
			if err != nil {
				continue
			}
			if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > 1<<20 {
				continue // Convert refuses these before decoding (checkSize)
			}
			img, err := c.decode(data)
			if err != nil {
				continue
			}
			if img == nil || img.Bounds() != image.Rect(0, 0, cfg.Width, cfg.Height) {
				t.Fatalf("%s: header says %dx%d, decoded %v", c.name, cfg.Width, cfg.Height, img)
			}
			recycle(img)
		}
	})
}
