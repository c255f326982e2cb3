package imgconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"io"
	"strings"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// Errors that Convert's errors wrap, for errors.Is. A failed conversion is deterministic: retrying
// the same input fails the same way.
var (
	// ErrNotImage is returned for input that is empty or in no format Convert knows.
	ErrNotImage = errors.New("not an image")
	// ErrCorrupt is returned for input that starts like a known format but does not decode
	// (truncated, damaged, or using a feature the decoder does not support). The decoder's own
	// error is wrapped too, so errors.Is(err, io.ErrUnexpectedEOF) reports truncation.
	ErrCorrupt = errors.New("corrupt image")
	// ErrTooLarge is returned, before any pixel is decoded, for an image whose width × height
	// exceeds Options.MaxPixels or that JPEG cannot represent (a side over 65535 pixels).
	ErrTooLarge = errors.New("image too large")
)

// maxJPEGSide is the largest width or height a JPEG file can declare (16-bit fields).
const maxJPEGSide = 65535

// Info describes the image that Convert decoded.
type Info struct {
	// Format is the input's format: "png", "jpeg", "gif", "bmp", "tiff" or "webp".
	Format string
	// Width and Height are the output's dimensions in pixels, which are the input's (for a GIF,
	// its logical screen).
	Width, Height int
}

// convErr is an error with its own message that wraps a sentinel (ErrNotImage, ErrCorrupt,
// ErrTooLarge) and, optionally, the decoder's error.
type convErr struct {
	kind  error
	cause error
	msg   string
}

func (e *convErr) Error() string { return e.msg }

func (e *convErr) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// codec is one input format, recognised by its leading bytes.
type codec struct {
	name   string   // as in Info.Format
	label  string   // for messages: "PNG"
	magics []string // '?' matches any byte
	// config reads the header only: the dimensions, without allocating pixels.
	config func(data []byte) (image.Config, error)
	decode func(data []byte) (image.Image, error)
	// short reports whether data visibly ends early (a missing trailer, a length field pointing
	// past the end). Decoders often report truncation as a generic format error; this tells the
	// two apart. Nil for formats without such a check.
	short func(data []byte) bool
}

// codecs are the formats Convert reads. Dispatch is by magic bytes here rather than through
// image.Decode, so that formats registered by unrelated packages are not accepted by accident.
// PNG and JPEG go through the replaceable codecs of codec_std.go; the others are pure Go always.
var codecs = []codec{
	{"png", "PNG", []string{"\x89PNG\r\n\x1a\n"}, pngConfig, pngDecode,
		func(b []byte) bool { return !bytes.HasSuffix(b, []byte("\x00\x00\x00\x00IEND\xaeB`\x82")) }},
	{"jpeg", "JPEG", []string{"\xff\xd8"}, jpegConfig, jpegDecode,
		func(b []byte) bool { return !bytes.HasSuffix(b, []byte{0xff, 0xd9}) }}, // EOI
	// gifDecode decodes the first frame only, as gif.Decode does.
	{"gif", "GIF", []string{"GIF87a", "GIF89a"}, fromReader(gif.DecodeConfig), gifDecode,
		func(b []byte) bool { return !bytes.HasSuffix(b, []byte{0x3b}) }}, // trailer
	{"bmp", "BMP", []string{"BM????\x00\x00\x00\x00"}, fromReader(bmp.DecodeConfig), fromReader(bmp.Decode),
		func(b []byte) bool { return uint64(len(b)) < uint64(binary.LittleEndian.Uint32(b[2:6])) }}, // file size
	{"tiff", "TIFF", []string{"II*\x00", "MM\x00*"}, fromReader(tiff.DecodeConfig), fromReader(tiff.Decode), nil},
	{"webp", "WebP", []string{"RIFF????WEBPVP8"}, fromReader(webp.DecodeConfig), fromReader(webp.Decode),
		func(b []byte) bool { return uint64(len(b)) < 8+uint64(binary.LittleEndian.Uint32(b[4:8])) }}, // RIFF size
}

// fromReader adapts a decoder that reads from an io.Reader to one given the whole file.
func fromReader[T any](f func(io.Reader) (T, error)) func([]byte) (T, error) {
	return func(data []byte) (T, error) { return f(bytes.NewReader(data)) }
}

func sniff(data []byte) *codec {
	for i := range codecs {
		for _, m := range codecs[i].magics {
			if matchMagic(m, data) {
				return &codecs[i]
			}
		}
	}
	return nil
}

func matchMagic(magic string, b []byte) bool {
	if len(b) < len(magic) {
		return false
	}
	for i := 0; i < len(magic); i++ {
		if magic[i] != '?' && magic[i] != b[i] {
			return false
		}
	}
	return true
}

// Convert decodes the image in data and encodes it as a JPEG at o.Quality, returning the JPEG
// and a description of the input. Zero fields of o take their defaults; invalid options are an
// error.
//
// The image's header is read first: an image whose width × height exceeds o.MaxPixels, or with
// a side over 65535 pixels (JPEG's limit), fails with ErrTooLarge before its pixels are
// allocated. Input that is not an image fails with ErrNotImage, a damaged image with ErrCorrupt;
// a panic inside a decoder is recovered and reported as ErrCorrupt.
//
// Opaque YCbCr, gray and RGBA images go to the encoder as decoded; anything with transparency is
// composited onto white (in place where the decoded layout allows), and a GIF's first frame is
// placed on its logical screen.
//
// On error the returned Info holds the format if it was recognised, and no dimensions.
func Convert(data []byte, o Options) ([]byte, Info, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, Info{}, err
	}
	if len(data) == 0 {
		return nil, Info{}, &convErr{kind: ErrNotImage, msg: "not an image: empty input"}
	}
	c := sniff(data)
	if c == nil {
		return nil, Info{}, &convErr{kind: ErrNotImage, msg: "not an image: unknown format (starts with " + leading(data) + ")"}
	}
	info := Info{Format: c.name}

	var cfg image.Config
	if err := guard(func() (err error) { cfg, err = c.config(data); return err }); err != nil {
		return nil, info, decodeErr(c, nil, err) // the header is at the start: its end is no clue
	}
	if err := checkSize(cfg.Width, cfg.Height, o.MaxPixels); err != nil {
		return nil, info, err
	}

	var img image.Image
	if err := guard(func() (err error) { img, err = c.decode(data); return err }); err != nil {
		return nil, info, decodeErr(c, data, err)
	}
	if img == nil {
		return nil, info, &convErr{kind: ErrCorrupt, msg: fmt.Sprintf("corrupt %s: decoder returned no image", c.label)}
	}
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	b := img.Bounds()
	if b.Empty() || !b.In(screen) {
		return nil, info, &convErr{kind: ErrCorrupt, msg: fmt.Sprintf("corrupt %s: decoded bounds %v do not fit the header's %dx%d", c.label, b, cfg.Width, cfg.Height)}
	}

	var out image.Image
	if err := guard(func() error {
		if b != screen {
			out = onWhiteCanvas(img, screen) // a GIF frame smaller than its screen
		} else {
			out = opaque(img)
		}
		return nil
	}); err != nil {
		return nil, info, fmt.Errorf("composite %s: %w", c.label, err)
	}
	info.Width, info.Height = screen.Dx(), screen.Dy()

	var jpg []byte
	err = guard(func() (err error) { jpg, err = jpegEncode(out, o.Quality); return err })
	out = nil
	recycle(img) // img (and out, which may share its pixels) is dropped here
	if err != nil {
		return nil, info, fmt.Errorf("encode JPEG: %w", err)
	}
	return jpg, info, nil
}

// Codec names the PNG and JPEG codecs this build of the package uses: "libjpeg-turbo 2.1.5 /
// libpng 1.6.39 / zlib 1.2.13" when built with cgo (the default where a C compiler is found),
// followed by " / libdeflate" where the system's libdeflate inflates PNG data, and
// "pure Go (image/jpeg, image/png)" when built with CGO_ENABLED=0.
func Codec() string { return codecName }

// guard runs f and turns a panic into an error: decoders are not all hardened against hostile
// input.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panicked: %v", r)
		}
	}()
	return f()
}

// decodeErr describes a decoder's failure: "truncated PNG: unexpected EOF",
// "corrupt JPEG: invalid JPEG format: missing SOI marker". With data non-nil, c.short may also
// diagnose truncation. Truncated input wraps io.ErrUnexpectedEOF whatever the decoder said.
func decodeErr(c *codec, data []byte, err error) error {
	e := &convErr{kind: ErrCorrupt, cause: err}
	what := "corrupt"
	// Some decoders format io errors with %v, losing the wrapping; their text remains.
	eof := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.HasSuffix(err.Error(), io.ErrUnexpectedEOF.Error()) || strings.HasSuffix(err.Error(), ": "+io.EOF.Error())
	if eof || (data != nil && c.short != nil && c.short(data)) {
		what = "truncated"
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			e.cause = errors.Join(err, io.ErrUnexpectedEOF)
		}
	}
	// Decoders prefix their messages with the format's name; it is already in ours.
	e.msg = what + " " + c.label + ": " + strings.TrimPrefix(err.Error(), c.name+": ")
	return e
}

// checkSize refuses dimensions that are non-positive, that JPEG cannot hold or whose product
// exceeds maxPixels, without overflowing.
func checkSize(w, h int, maxPixels int64) error {
	if w <= 0 || h <= 0 {
		return &convErr{kind: ErrCorrupt, msg: fmt.Sprintf("corrupt image: invalid dimensions %dx%d", w, h)}
	}
	mp := float64(w) * float64(h) / 1e6 // for messages only: exact enough, cannot overflow
	if int64(w) > maxPixels/int64(h) {  // w*h > maxPixels, without computing w*h
		return &convErr{kind: ErrTooLarge, msg: fmt.Sprintf("image %dx%d (%.1f MP) exceeds max_pixels %.1f MP", w, h, mp, float64(maxPixels)/1e6)}
	}
	if w > maxJPEGSide || h > maxJPEGSide {
		return &convErr{kind: ErrTooLarge, msg: fmt.Sprintf("image %dx%d exceeds JPEG's limit of %d pixels per side", w, h, maxJPEGSide)}
	}
	return nil
}

// leading formats the first bytes of data in hex, for "unknown format" messages.
func leading(data []byte) string {
	const n = 8
	if len(data) > n {
		return fmt.Sprintf("% x …", data[:n])
	}
	return fmt.Sprintf("% x", data)
}

// opaque returns img with any transparency composited onto white, in a type the JPEG encoder
// handles without per-pixel interface calls. img is the decoder's fresh output, owned by the
// caller, so it may be modified in place.
func opaque(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.YCbCr, *image.Gray:
		return m
	case interface{ knownOpaque() }: // a native decoder's output, opaque by construction
		return img
	case *image.RGBA:
		if !m.Opaque() {
			rgbaOverWhite(m.Pix, m.Stride, m.Rect)
		}
		return m
	case *image.NRGBA:
		if !m.Opaque() {
			nrgbaOverWhite(m.Pix, m.Stride, m.Rect)
		}
		// Opaque non-premultiplied pixels are premultiplied ones: same bytes, no copy.
		return &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
	case *image.NYCbCrA:
		if m.Opaque() {
			return &m.YCbCr
		}
	case *image.Paletted:
		return palettedOverWhite(m)
	case *image.Gray16:
		g := image.NewGray(m.Rect)
		w := m.Rect.Dx()
		for y := 0; y < m.Rect.Dy(); y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+2*w]
			dst := g.Pix[y*g.Stride : y*g.Stride+w]
			for x := range dst {
				dst[x] = src[2*x] // high byte of the big-endian sample
			}
		}
		return g
	case *image.CMYK:
		rgba := image.NewRGBA(m.Rect)
		draw.Draw(rgba, m.Rect, m, m.Rect.Min, draw.Src) // CMYK is opaque
		return rgba
	}
	return onWhiteCanvas(img, img.Bounds())
}

// onWhiteCanvas draws img over a white RGBA image with bounds r. This is the general path (16-bit
// colour with alpha, translucent WebP, GIF frames smaller than the screen).
func onWhiteCanvas(img image.Image, r image.Rectangle) *image.RGBA {
	dst := image.NewRGBA(r)
	for i := range dst.Pix {
		dst.Pix[i] = 0xff
	}
	draw.Draw(dst, img.Bounds(), img, img.Bounds().Min, draw.Over)
	return dst
}

// rgbaOverWhite composites premultiplied RGBA pixels onto white in place: c + (1-α)·white.
func rgbaOverWhite(pix []byte, stride int, r image.Rectangle) {
	w4 := 4 * r.Dx()
	for y := 0; y < r.Dy(); y++ {
		row := pix[y*stride : y*stride+w4]
		for i := 0; i < len(row); i += 4 {
			a := row[i+3]
			if a == 0xff {
				continue
			}
			t := 0xff - a
			// Premultiplied components never exceed α; clamp anyway for malformed input.
			row[i+0] = satAdd(row[i+0], t)
			row[i+1] = satAdd(row[i+1], t)
			row[i+2] = satAdd(row[i+2], t)
			row[i+3] = 0xff
		}
	}
}

func satAdd(a, b uint8) uint8 {
	if s := uint16(a) + uint16(b); s < 0xff {
		return uint8(s)
	}
	return 0xff
}

// nrgbaOverWhite composites non-premultiplied RGBA pixels onto white in place: c·α + (1-α)·white.
func nrgbaOverWhite(pix []byte, stride int, r image.Rectangle) {
	w4 := 4 * r.Dx()
	for y := 0; y < r.Dy(); y++ {
		row := pix[y*stride : y*stride+w4]
		for i := 0; i < len(row); i += 4 {
			a := uint32(row[i+3])
			if a == 0xff {
				continue
			}
			t := (0xff - a) * 0xff
			row[i+0] = uint8((uint32(row[i+0])*a + t + 127) / 0xff)
			row[i+1] = uint8((uint32(row[i+1])*a + t + 127) / 0xff)
			row[i+2] = uint8((uint32(row[i+2])*a + t + 127) / 0xff)
			row[i+3] = 0xff
		}
	}
}

// palettedOverWhite expands a paletted image to RGBA through a 256-entry table of its palette
// composited onto white. Indices beyond the palette (possible in a hand-built image; decoders
// reject or pad them) are opaque black, as image/png pads short palettes, rather than a panic.
func palettedOverWhite(m *image.Paletted) *image.RGBA {
	var lut [256]uint32 // the RGBA bytes of an entry, little-endian: one store a pixel
	for i := range lut {
		lut[i] = 0xff << 24
	}
	for i, c := range m.Palette {
		if i >= len(lut) {
			break
		}
		r, g, b, a := c.RGBA() // premultiplied, 16-bit
		t := 0xffff - a
		lut[i] = (r+t)>>8 | (g+t)>>8<<8 | (b+t)>>8<<16 | 0xff<<24
	}
	dst := image.NewRGBA(m.Rect)
	w := m.Rect.Dx()
	for y := 0; y < m.Rect.Dy(); y++ {
		src := m.Pix[y*m.Stride : y*m.Stride+w]
		row := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for x, idx := range src {
			binary.LittleEndian.PutUint32(row[4*x:4*x+4], lut[idx])
		}
	}
	return dst
}
