package imgconv

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// sampleKind is one kind of sample image that Generate writes.
type sampleKind int

const (
	sampleJPEG        sampleKind = iota // photo-like JPEG
	samplePNGAlpha                      // 8-bit RGBA PNG with a transparent, soft-edged vignette
	sampleGIF                           // two-frame animated GIF (web-safe palette, dithered)
	samplePNGPaletted                   // paletted PNG with transparent rounded corners
	samplePNGGray                       // 8-bit grayscale PNG
)

// sampleCycle is the order in which Generate cycles through the kinds; JPEG appears twice, as in
// a typical folder of pictures. Any six consecutive images include every kind.
var sampleCycle = [...]sampleKind{sampleJPEG, samplePNGAlpha, sampleGIF, samplePNGPaletted, samplePNGGray, sampleJPEG}

// Generate writes n sample images to dir, creating it if needed, and returns their paths in
// order. The images are a deterministic mix of JPEG, PNG (RGBA with transparency, paletted with
// transparency, grayscale) and animated GIF, from 64 to 1024 pixels a side, with every tenth
// 1600×1200 or 1200×1600, showing gradients, shapes and noise. They are named img-0001.jpg,
// img-0002.png, ..., overwriting files of the same names.
//
// The bytes written depend only on seed, each image's index and the Go version's encoders, so
// Generate(dir, 5, s) writes the first five of Generate(dir, 10, s).
func Generate(dir string, n int, seed int64) ([]string, error) {
	if n < 0 {
		return nil, fmt.Errorf("imgconv: generate: negative count %d", n)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("imgconv: generate: %w", err)
	}
	paths := make([]string, 0, n)
	for i := range n {
		name, data, err := sample(i, seed)
		if err != nil {
			return paths, fmt.Errorf("imgconv: generate image %d: %w", i+1, err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return paths, fmt.Errorf("imgconv: generate: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// pngEnc favours speed: the samples are noisy, so better compression would cost much time for
// little size.
var pngEnc = png.Encoder{CompressionLevel: png.BestSpeed}

// sample renders and encodes the i'th (0-based) sample image for seed.
func sample(i int, seed int64) (name string, data []byte, err error) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
	kind := sampleCycle[i%len(sampleCycle)]
	w, h := 64+rng.IntN(961), 64+rng.IntN(961)
	if i%10 == 9 {
		w, h = 1600, 1200
		if (i/10)%2 == 1 {
			w, h = h, w
		}
	}
	base := fmt.Sprintf("img-%04d", i+1)
	var buf bytes.Buffer
	switch kind {
	case sampleJPEG:
		m := render(rng, w, h, nil)
		err = jpeg.Encode(&buf, &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}, &jpeg.Options{Quality: 92})
		name = base + ".jpg"
	case samplePNGAlpha:
		m := render(rng, w, h, vignette)
		err = pngEnc.Encode(&buf, m)
		name = base + ".png"
	case samplePNGPaletted:
		m := render(rng, w, h, roundedCorners)
		err = pngEnc.Encode(&buf, webSafe(m, true))
		name = base + ".png"
	case samplePNGGray:
		m := render(rng, w, h, nil)
		g := image.NewGray(m.Rect)
		draw.Draw(g, m.Rect, m, image.Point{}, draw.Src)
		err = pngEnc.Encode(&buf, g)
		name = base + ".png"
	case sampleGIF:
		first := webSafe(render(rng, w, h, nil), false)
		// A second, smaller frame over the middle, as animated GIFs usually update part of the
		// screen.
		second := webSafe(render(rng, max(1, w/2), max(1, h/2), nil), false)
		second.Rect = second.Rect.Add(image.Pt(w/4, h/4))
		err = gif.EncodeAll(&buf, &gif.GIF{
			Image:    []*image.Paletted{first, second},
			Delay:    []int{50, 50},
			Disposal: []byte{gif.DisposalNone, gif.DisposalNone},
		})
		name = base + ".gif"
	default:
		err = errors.New("unknown sample kind")
	}
	if err != nil {
		return "", nil, err
	}
	return name, buf.Bytes(), nil
}

// alphaMask gives a pixel's opacity (0..1) from its position relative to the centre, in units of
// the half-width (u) and half-height (v).
type alphaMask func(u, v float64) float64

// vignette is opaque in the middle, fading to fully transparent at the edge of an ellipse.
func vignette(u, v float64) float64 {
	d := math.Sqrt(u*u + v*v)
	return math.Max(0, math.Min(1, (1-d)/0.35))
}

// roundedCorners is opaque except for transparent rounded corners.
func roundedCorners(u, v float64) float64 {
	const r = 0.3 // corner radius, as a fraction of the half-size
	du, dv := math.Abs(u)-(1-r), math.Abs(v)-(1-r)
	if du > 0 && dv > 0 && du*du+dv*dv > r*r {
		return 0
	}
	return 1
}

type sceneShape struct {
	ellipse        bool
	cx, cy, rx, ry float64
	col            [3]float64
	alpha          float64
}

// render draws a picture of size w×h: a two-colour gradient rippled by a sine wave, overlapping
// translucent shaded ellipses and rectangles, and grain. With mask nil the image is opaque.
func render(rng *rand.Rand, w, h int, mask alphaMask) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	randColor := func() [3]float64 {
		return [3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
	}
	c0, c1 := randColor(), randColor()
	theta := rng.Float64() * 2 * math.Pi
	dx, dy := math.Cos(theta), math.Sin(theta)
	span := math.Abs(dx)*float64(w) + math.Abs(dy)*float64(h)
	off := math.Min(0, dx*float64(w)) + math.Min(0, dy*float64(h))
	fx := (0.5 + rng.Float64()*3) * 2 * math.Pi / float64(w)
	fy := (0.5 + rng.Float64()*3) * 2 * math.Pi / float64(h)

	// Work in float RGB, then quantise once, so overlapping shapes blend smoothly.
	buf := make([]float64, 3*w*h)
	for y := range h {
		for x := range w {
			t := ((float64(x)*dx+float64(y)*dy)-off)/span + 0.07*math.Sin(float64(x)*fx+float64(y)*fy)
			t = math.Max(0, math.Min(1, t))
			p := buf[3*(y*w+x):]
			for c := range 3 {
				p[c] = c0[c] + (c1[c]-c0[c])*t
			}
		}
	}

	shapes := make([]sceneShape, 6+rng.IntN(10))
	for i := range shapes {
		s := &shapes[i]
		s.ellipse = rng.IntN(3) != 0
		s.cx, s.cy = rng.Float64()*float64(w), rng.Float64()*float64(h)
		s.rx = (0.04 + rng.Float64()*0.25) * float64(w)
		s.ry = (0.04 + rng.Float64()*0.25) * float64(h)
		s.col = randColor()
		s.alpha = 0.45 + rng.Float64()*0.55
	}
	for _, s := range shapes {
		x0, x1 := max(0, int(s.cx-s.rx)), min(w, int(math.Ceil(s.cx+s.rx)))
		y0, y1 := max(0, int(s.cy-s.ry)), min(h, int(math.Ceil(s.cy+s.ry)))
		for y := y0; y < y1; y++ {
			v := (float64(y) + 0.5 - s.cy) / s.ry
			for x := x0; x < x1; x++ {
				u := (float64(x) + 0.5 - s.cx) / s.rx
				d := u*u + v*v
				if s.ellipse && d > 1 {
					continue
				}
				shade := 1 - 0.35*math.Min(1, d) // lit from the centre
				p := buf[3*(y*w+x):]
				for c := range 3 {
					p[c] += (s.col[c]*shade - p[c]) * s.alpha
				}
			}
		}
	}

	const grain = 10
	for y := range h {
		v := (float64(y)+0.5)/float64(h)*2 - 1
		for x := range w {
			p := buf[3*(y*w+x):]
			q := m.Pix[y*m.Stride+4*x:]
			for c := range 3 {
				q[c] = clamp8(p[c] + float64(rng.IntN(2*grain+1)-grain))
			}
			q[3] = 0xff
			if mask != nil {
				u := (float64(x)+0.5)/float64(w)*2 - 1
				q[3] = clamp8(mask(u, v) * 255)
			}
		}
	}
	return m
}

func clamp8(f float64) uint8 {
	switch {
	case f <= 0:
		return 0
	case f >= 255:
		return 255
	}
	return uint8(f + 0.5)
}

// bayer4 is a 4×4 ordered-dithering matrix, thresholds in sixteenths.
var bayer4 = [4][4]float64{{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9}, {15, 7, 13, 5}}

// webSafe quantises m to the 216-colour web-safe palette (6 levels a channel) with ordered
// dithering. With transparent, index 0 is a transparent entry that pixels under half opacity map
// to.
func webSafe(m *image.NRGBA, transparent bool) *image.Paletted {
	pal := palette.WebSafe // index r*36 + g*6 + b, levels 0x00, 0x33, ..., 0xff
	base := 0
	if transparent {
		pal = append(color.Palette{color.NRGBA{}}, pal...)
		base = 1
	}
	p := image.NewPaletted(m.Rect, pal)
	w, h := m.Rect.Dx(), m.Rect.Dy()
	for y := range h {
		for x := range w {
			q := m.Pix[y*m.Stride+4*x:]
			if transparent && q[3] < 0x80 {
				p.Pix[y*p.Stride+x] = 0
				continue
			}
			t := (bayer4[y&3][x&3]+0.5)/16 - 0.5
			var lv [3]int
			for c := range 3 {
				lv[c] = min(5, max(0, int(math.Round(float64(q[c])/51+t))))
			}
			p.Pix[y*p.Stride+x] = uint8(base + lv[0]*36 + lv[1]*6 + lv[2])
		}
	}
	return p
}
