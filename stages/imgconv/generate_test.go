package imgconv

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "images") // created by Generate
	const n = 10                                       // image 10 is the large one
	paths, err := Generate(dir, n, 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != n {
		t.Fatalf("%d paths, want %d", len(paths), n)
	}
	wantNames := []string{"img-0001.jpg", "img-0002.png", "img-0003.gif", "img-0004.png", "img-0005.png", "img-0006.jpg"}
	for i, w := range wantNames {
		if paths[i] != filepath.Join(dir, w) {
			t.Errorf("paths[%d] = %s, want %s", i, paths[i], filepath.Join(dir, w))
		}
	}

	var sawAlpha, sawPalettedAlpha, sawGray, sawAnimated, sawJPEG bool
	for i, p := range paths {
		data := readFile(t, p)
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if ext := filepath.Ext(p); map[string]string{".jpg": "jpeg", ".png": "png", ".gif": "gif"}[ext] != format {
			t.Errorf("%s: format %s does not match its extension", p, format)
		}
		if i == 9 {
			if cfg.Width != 1600 || cfg.Height != 1200 {
				t.Errorf("%s: %dx%d, want 1600x1200", p, cfg.Width, cfg.Height)
			}
		} else if cfg.Width < 64 || cfg.Width > 1024 || cfg.Height < 64 || cfg.Height > 1024 {
			t.Errorf("%s: %dx%d, want 64..1024 a side", p, cfg.Width, cfg.Height)
		}
		switch format {
		case "jpeg":
			sawJPEG = true
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		case "gif":
			g, err := gif.DecodeAll(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			sawAnimated = sawAnimated || len(g.Image) > 1
			assertVaried(t, p, g.Image[0])
		case "png":
			m, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			assertVaried(t, p, m)
			switch m := m.(type) {
			case *image.NRGBA:
				sawAlpha = sawAlpha || (!m.Opaque() && m.NRGBAAt(m.Rect.Dx()/2, m.Rect.Dy()/2).A == 255)
			case *image.Paletted:
				sawPalettedAlpha = sawPalettedAlpha || !m.Opaque()
			case *image.Gray:
				sawGray = true
			}
		}
		// Every sample converts.
		if _, _, err := Convert(data, Options{}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if !sawAlpha || !sawPalettedAlpha || !sawGray || !sawAnimated || !sawJPEG {
		t.Errorf("missing kinds: alpha %v, paletted alpha %v, gray %v, animated GIF %v, JPEG %v",
			sawAlpha, sawPalettedAlpha, sawGray, sawAnimated, sawJPEG)
	}
}

// assertVaried fails if m looks flat: real content has many distinct colours.
func assertVaried(t *testing.T, name string, m image.Image) {
	t.Helper()
	seen := map[[4]uint32]bool{}
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := m.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(seen) < 32 {
		t.Errorf("%s: only %d distinct colours", name, len(seen))
	}
}

func TestGenerateDeterministic(t *testing.T) {
	const n = 8
	a, err := Generate(t.TempDir(), n, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(t.TempDir(), n, 7)
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := Generate(t.TempDir(), 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(t.TempDir(), n, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		da, db, do := readFile(t, a[i]), readFile(t, b[i]), readFile(t, other[i])
		if filepath.Base(a[i]) != filepath.Base(b[i]) || !bytes.Equal(da, db) {
			t.Errorf("image %d differs between runs with the same seed", i+1)
		}
		if bytes.Equal(da, do) {
			t.Errorf("image %d is the same for seeds 7 and 8", i+1)
		}
		if i < len(prefix) && !bytes.Equal(da, readFile(t, prefix[i])) {
			t.Errorf("image %d depends on n", i+1)
		}
	}
}

func TestGenerateEdgeCases(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "empty")
	paths, err := Generate(dir, 0, 1)
	if err != nil || len(paths) != 0 {
		t.Errorf("n=0: got %v, %v", paths, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("n=0: directory not created: %v", err)
	}
	if _, err := Generate(t.TempDir(), -1, 1); err == nil {
		t.Error("n=-1: no error")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(filepath.Join(file, "sub"), 1, 1); err == nil {
		t.Error("dir under a regular file: no error")
	}
}

func TestWebSafePaletteLayout(t *testing.T) {
	// webSafe computes indices arithmetically; check the palette's order agrees.
	m := image.NewNRGBA(image.Rect(0, 0, 6*6*6, 1))
	i := 0
	for r := range 6 {
		for g := range 6 {
			for b := range 6 {
				m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = uint8(r*51), uint8(g*51), uint8(b*51), 255
				i++
			}
		}
	}
	for _, transparent := range []bool{false, true} {
		p := webSafe(m, transparent)
		for x := range 216 {
			gr, gg, gb, _ := p.At(x, 0).RGBA()
			wr, wg, wb, _ := m.At(x, 0).RGBA()
			if !near(gr>>8, wr>>8, 0) || !near(gg>>8, wg>>8, 0) || !near(gb>>8, wb>>8, 0) {
				t.Fatalf("transparent=%v: colour %d quantised to %d,%d,%d, want %d,%d,%d", transparent, x, gr>>8, gg>>8, gb>>8, wr>>8, wg>>8, wb>>8)
			}
		}
	}
}
