//go:build cgo && !imgconv_purego

package imgconv

// The native codecs: JPEG decoding and encoding with libjpeg-turbo (through the libjpeg API)
// and PNG decoding with libpng, linked from the system (Debian: libjpeg62-turbo-dev, libpng-dev,
// zlib1g-dev). codec_std.go states the contract these functions keep; codec_cgo.c holds the C
// side. Build with CGO_ENABLED=0 to use the pure-Go codecs instead.
//
// What makes this path faster than decoding to RGB and encoding that:
//
//   - A 4:2:0 YCbCr JPEG (nearly every photo) is decoded to its planes as stored (libjpeg's raw
//     data output: no upsampling, no colour conversion) into an *image.YCbCr, which the encoder
//     takes as raw data again. The only pixel work is the inverse and forward DCT.
//   - An 8-bit, non-interlaced PNG has its image data inflated in one piece (by libdeflate
//     where the system has it, zlib otherwise) and unfiltered in place; its pixels become RGB
//     (or grey) in the same buffer where they fit, composited onto white, and the encoder reads
//     them in place (JCS_EXT_RGB). Other PNGs are expanded by libpng into RGBA, which the
//     encoder reads in place too (JCS_EXT_RGBX: the fourth byte is skipped).
//   - Pixel buffers come from a pool and go back to it once the image is encoded (recycle), so
//     a worker converting a folder of same-sized photos allocates them once.
//
// Errors: both libraries report fatal errors through a handler that must not return; the C
// wrappers' handlers longjmp back to the entry point, which cleans up and returns the message,
// so that a malformed file is an error here and never takes the process down. libjpeg's
// warnings about corrupt or missing data are errors too (it would otherwise return an image
// with invented pixels).

/*
#cgo LDFLAGS: -ljpeg -lpng -lz -ldl
#include <stdlib.h>
#include "codec_cgo.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// codecName says which codecs this build uses, for Codec.
var codecName = C.GoString(C.tc_versions())

// nativeError turns a C entry point's result into an error: a truncation wraps
// io.ErrUnexpectedEOF, as the codec contract asks.
func nativeError(rc C.int, msg *[C.TC_MSG]C.char) error {
	text := C.GoString(&msg[0])
	switch rc {
	case C.TC_OK:
		return nil
	case C.TC_EOF:
		if text == io.ErrUnexpectedEOF.Error() {
			return io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%s: %w", text, io.ErrUnexpectedEOF)
	}
	if text == "" {
		text = "decoder failed"
	}
	return errors.New(text)
}

func cbytes(data []byte) (*C.uint8_t, C.size_t) {
	if len(data) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&data[0])), C.size_t(len(data))
}

// pixPool holds pixel buffers (*[]byte) for the decoders, which recycle returns once the image
// made of them is encoded: a worker converting a folder of same-sized photos allocates its
// buffers once instead of once an image (a 5K photo is 22 MB of planes).
var pixPool sync.Pool

// getPix returns a buffer of n bytes, not zeroed: the decoders write every byte an image shows.
func getPix(n int) []byte {
	if p, ok := pixPool.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n)
}

// recycle gives the pixel buffer of img, an image the caller owns and drops (no reference to it
// or to anything sharing its pixels remains), back to the decoders' pool. Convert calls it on the
// image it decoded, once that is encoded.
func recycle(img image.Image) {
	var pix []byte
	switch m := img.(type) {
	case *image.YCbCr:
		pix = m.Y // our decoder's Y slice spans the chroma planes too, in its capacity
	case *image.Gray:
		pix = m.Pix
	case *image.RGBA:
		pix = m.Pix
	case *image.NRGBA:
		pix = m.Pix
	case *opaqueRGBA:
		pix = m.Pix
	case *rgbImage:
		pix = m.Pix
	}
	putPix(pix)
}

// putPix gives a buffer that nothing references any more to the decoders' pool.
func putPix(pix []byte) {
	if cap(pix) == 0 {
		return
	}
	pix = pix[:cap(pix)]
	pixPool.Put(&pix)
}

func jpegHeader(data []byte) (C.tc_jpeg_info, error) {
	var info C.tc_jpeg_info
	p, n := cbytes(data)
	rc := C.tc_jpeg_header(p, n, &info)
	return info, nativeError(rc, &info.msg)
}

func jpegConfig(data []byte) (image.Config, error) {
	info, err := jpegHeader(data)
	if err != nil {
		return image.Config{}, err
	}
	var cm color.Model = color.YCbCrModel
	switch {
	case info.gray != 0:
		cm = color.GrayModel
	case info.rgb != 0:
		cm = color.RGBAModel
	case info.components == 4:
		cm = color.CMYKModel
	}
	return image.Config{ColorModel: cm, Width: int(info.width), Height: int(info.height)}, nil
}

// ycbcrRatio is the image.YCbCr layout of a JPEG's sampling factors, when it has one: chroma
// at 1×1 and luma at one of Go's ratios.
func ycbcrRatio(info *C.tc_jpeg_info) (image.YCbCrSubsampleRatio, bool) {
	if info.h[1] != 1 || info.v[1] != 1 || info.h[2] != 1 || info.v[2] != 1 {
		return 0, false
	}
	switch [2]C.int{info.h[0], info.v[0]} {
	case [2]C.int{1, 1}:
		return image.YCbCrSubsampleRatio444, true
	case [2]C.int{2, 1}:
		return image.YCbCrSubsampleRatio422, true
	case [2]C.int{2, 2}:
		return image.YCbCrSubsampleRatio420, true
	case [2]C.int{1, 2}:
		return image.YCbCrSubsampleRatio440, true
	case [2]C.int{4, 1}:
		return image.YCbCrSubsampleRatio411, true
	case [2]C.int{4, 2}:
		return image.YCbCrSubsampleRatio410, true
	}
	return 0, false
}

func jpegDecode(data []byte) (image.Image, error) {
	info, err := jpegHeader(data)
	if err != nil {
		return nil, err
	}
	w, h := int(info.width), int(info.height)
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("invalid dimensions %dx%d", w, h)
	}
	p, n := cbytes(data)
	var msg [C.TC_MSG]C.char
	switch ratio, ok := ycbcrRatio(&info); {
	case info.components == 3 && info.ycbcr != 0 && ok:
		// The planes as stored, each row wide enough for the decoder's whole blocks.
		ys, cs := int(info.wblocks[0])*8, int(info.wblocks[1])*8
		yr, cr := int(info.hblocks[0])*8, int(info.hblocks[1])*8
		buf := getPix(ys*yr + 2*cs*cr)
		var pin runtime.Pinner
		pin.Pin(&buf[0])
		planes := C.tc_planes{
			y: (*C.uint8_t)(unsafe.Pointer(&buf[0])), cb: (*C.uint8_t)(unsafe.Pointer(&buf[ys*yr])),
			cr:      (*C.uint8_t)(unsafe.Pointer(&buf[ys*yr+cs*cr])),
			ystride: C.int(ys), cstride: C.int(cs), yrows: C.int(yr), crows: C.int(cr),
		}
		rc := C.tc_jpeg_decode_raw(p, n, info.width, info.height, &planes, &msg[0])
		pin.Unpin()
		m := &image.YCbCr{
			Y: buf[:ys*yr], Cb: buf[ys*yr : ys*yr+cs*cr : ys*yr+cs*cr], Cr: buf[ys*yr+cs*cr:],
			YStride: ys, CStride: cs, SubsampleRatio: ratio, Rect: image.Rect(0, 0, w, h),
		}
		// Y keeps the whole buffer in its capacity, for recycle.
		if err := nativeError(rc, &msg); err != nil {
			return nil, err // the buffer is left to the collector: errors are rare
		}
		return m, nil
	case info.components == 1 || info.components == 3:
		gray := info.components == 1
		bpp := 4
		if gray {
			bpp = 1
		}
		buf := getPix(w * h * bpp)
		rc := C.tc_jpeg_decode_pixels(p, n, info.width, info.height, boolInt(gray), (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.int(w*bpp), &msg[0])
		var m image.Image
		if gray {
			m = &image.Gray{Pix: buf, Stride: w, Rect: image.Rect(0, 0, w, h)}
		} else {
			m = &image.RGBA{Pix: buf, Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}
		}
		if err := nativeError(rc, &msg); err != nil {
			return nil, err // the buffer is left to the collector: errors are rare
		}
		return m, nil
	}
	// CMYK and YCCK (Adobe's inverted CMYK conventions): the pure-Go decoder, which knows them.
	return jpeg.Decode(bytes.NewReader(data))
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func pngHeader(data []byte) (C.tc_png_info, error) {
	var info C.tc_png_info
	p, n := cbytes(data)
	rc := C.tc_png_header(p, n, &info)
	return info, nativeError(rc, &info.msg)
}

// PNG colour types.
const (
	pngGray      = 0
	pngRGB       = 2
	pngPalette   = 3
	pngGrayAlpha = 4
	pngRGBA      = 6
)

func pngConfig(data []byte) (image.Config, error) {
	info, err := pngHeader(data)
	if err != nil {
		return image.Config{}, err
	}
	var cm color.Model = color.NRGBAModel
	switch {
	case info.color_type == pngGray && info.trns == 0:
		cm = color.GrayModel
	case (info.color_type == pngRGB || info.color_type == pngPalette) && info.trns == 0:
		cm = color.RGBAModel
	}
	return image.Config{ColorModel: cm, Width: int(info.width), Height: int(info.height)}, nil
}

// opaqueRGBA is an RGBA image its decoder made opaque (a PNG without transparency, or one whose
// rows were composited onto white as they were decoded): Convert hands it to the encoder
// without looking at its alpha again.
type opaqueRGBA struct{ image.RGBA }

func (*opaqueRGBA) knownOpaque() {}

// pngDecode decodes to *image.Gray (grey without transparency) or an opaque RGB or RGBA image, 8
// bits a sample: any transparency (an alpha channel or a tRNS chunk) is composited onto white,
// row by row as the rows are decoded, exactly as Convert composites a non-premultiplied image.
//
// 8-bit, non-interlaced images (nearly all) take tc_png_decode8's path: the image data inflated
// in one piece (with libdeflate where the system has it) and unfiltered in place, the result
// viewed in place where its layout allows. Others go through libpng's transforms.
func pngDecode(data []byte) (image.Image, error) {
	info, err := pngHeader(data)
	if err != nil {
		return nil, err
	}
	w, h := int(info.width), int(info.height)
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("invalid dimensions %dx%d", w, h)
	}
	if info.bit_depth == 8 && info.interlace == 0 && !pngForceLibpng {
		switch info.color_type {
		case pngGray, pngRGB, pngPalette, pngGrayAlpha, pngRGBA:
			return pngDecode8(data, &info)
		}
	}
	gray := info.color_type == pngGray && info.trns == 0
	ch := 4
	if gray {
		ch = 1
	}
	buf := getPix(w * h * ch)
	p, n := cbytes(data)
	var msg [C.TC_MSG]C.char
	rc := C.tc_png_decode(p, n, info.width, info.height, C.int(ch), (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.int(w*ch), &msg[0])
	r := image.Rect(0, 0, w, h)
	var m image.Image
	if gray {
		m = &image.Gray{Pix: buf, Stride: w, Rect: r}
	} else {
		m = &opaqueRGBA{image.RGBA{Pix: buf, Stride: 4 * w, Rect: r}}
	}
	if err := nativeError(rc, &msg); err != nil {
		return nil, err
	}
	return m, nil
}

// For tests comparing the paths: pngForceLibpng sends every PNG through libpng's transforms,
// pngZlibOnly makes the 8-bit path inflate with zlib where libdeflate was found.
var pngForceLibpng, pngZlibOnly bool

// haveLibdeflate reports whether libdeflate.so.0 was found (and is used for PNG data).
func haveLibdeflate() bool { return C.tc_have_libdeflate() != 0 }

// pngDecode8 is pngDecode for 8-bit, non-interlaced images, with the layout tc_png_decode8 states.
func pngDecode8(data []byte, info *C.tc_png_info) (image.Image, error) {
	w, h := int(info.width), int(info.height)
	ct, trns := int(info.color_type), info.trns != 0
	ch := 1 // grey, palette
	switch ct {
	case pngGrayAlpha:
		ch = 2
	case pngRGB:
		ch = 3
	case pngRGBA:
		ch = 4
	}
	stride := w*ch + 1
	filt := getPix(stride * h)
	var out []byte
	toOut := ct == pngPalette || ct == pngGrayAlpha || (ct == pngGray && trns)
	if toOut {
		out = getPix(3 * w * h)
	}
	p, n := cbytes(data)
	var msg [C.TC_MSG]C.char
	outp, outn := cbytes(out)
	rc := C.tc_png_decode8(p, n, info.width, info.height, (*C.uint8_t)(unsafe.Pointer(&filt[0])), C.size_t(len(filt)),
		outp, outn, boolInt(pngZlibOnly), &msg[0])
	if err := nativeError(rc, &msg); err != nil {
		return nil, err // the buffers are left to the collector: errors are rare
	}
	r := image.Rect(0, 0, w, h)
	switch {
	case toOut:
		putPix(filt)
		return &rgbImage{Pix: out, Stride: 3 * w, Rect: r}, nil
	case ct == pngGray:
		// The rows as unfiltered, after their filter byte. Pix keeps the rest of the buffer
		// in its capacity, for recycle.
		return &image.Gray{Pix: filt[1:], Stride: stride, Rect: r}, nil
	}
	return &rgbImage{Pix: filt[1:], Stride: stride, Rect: r}, nil
}

// rgbImage is an opaque image of 8-bit RGB samples, three bytes a pixel: what the PNG decoder
// gives for colour, which libjpeg takes in place (JCS_EXT_RGB), with no fourth byte to write.
type rgbImage struct {
	Pix    []byte
	Stride int
	Rect   image.Rectangle
}

func (m *rgbImage) ColorModel() color.Model { return color.RGBAModel }
func (m *rgbImage) Bounds() image.Rectangle { return m.Rect }
func (m *rgbImage) Opaque() bool            { return true }
func (*rgbImage) knownOpaque()              {}

func (m *rgbImage) At(x, y int) color.Color {
	if !image.Pt(x, y).In(m.Rect) {
		return color.RGBA{}
	}
	i := (y-m.Rect.Min.Y)*m.Stride + 3*(x-m.Rect.Min.X)
	return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff}
}

// jpegEncode hands *image.YCbCr, *image.Gray and *image.RGBA (opaque) to libjpeg in place;
// anything else is first drawn onto an RGBA image.
func jpegEncode(img image.Image, quality int) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("cannot encode an empty image (%v)", b)
	}
	if w > maxJPEGSide || h > maxJPEGSide {
		return nil, fmt.Errorf("image %dx%d exceeds JPEG's limit of %d pixels per side", w, h, maxJPEGSide)
	}
	var im C.tc_image
	im.width, im.height = C.int(w), C.int(h)
	var pin runtime.Pinner
	defer pin.Unpin()
	ptr := func(s []byte, off int) *C.uint8_t {
		pin.Pin(&s[off])
		return (*C.uint8_t)(unsafe.Pointer(&s[off]))
	}
	switch m := img.(type) {
	case *image.YCbCr:
		hs, vs, ok := chromaShifts(m.SubsampleRatio)
		cw, chh := (w+(1<<hs)-1)>>hs, (h+(1<<vs)-1)>>vs
		if !ok || !planeOK(m.Y, m.YOffset(b.Min.X, b.Min.Y), m.YStride, w, h) ||
			!planeOK(m.Cb, m.COffset(b.Min.X, b.Min.Y), m.CStride, cw, chh) ||
			!planeOK(m.Cr, m.COffset(b.Min.X, b.Min.Y), m.CStride, cw, chh) ||
			(hs > 0 && b.Min.X%(1<<hs) != 0) || (vs > 0 && b.Min.Y%(1<<vs) != 0) {
			return jpegEncode(toRGBA(img), quality)
		}
		im.kind = C.TC_YCBCR
		im.p0 = ptr(m.Y, m.YOffset(b.Min.X, b.Min.Y))
		im.p1 = ptr(m.Cb, m.COffset(b.Min.X, b.Min.Y))
		im.p2 = ptr(m.Cr, m.COffset(b.Min.X, b.Min.Y))
		im.s0, im.s1 = C.int(m.YStride), C.int(m.CStride)
		im.hshift, im.vshift = C.int(hs), C.int(vs)
	case *image.Gray:
		if !planeOK(m.Pix, m.PixOffset(b.Min.X, b.Min.Y), m.Stride, w, h) {
			return jpegEncode(toRGBA(img), quality)
		}
		im.kind = C.TC_GRAY
		im.p0, im.s0 = ptr(m.Pix, m.PixOffset(b.Min.X, b.Min.Y)), C.int(m.Stride)
	case *image.RGBA, *opaqueRGBA:
		rgba, ok := img.(*image.RGBA)
		if !ok {
			rgba = &img.(*opaqueRGBA).RGBA
		}
		if !planeOK(rgba.Pix, rgba.PixOffset(b.Min.X, b.Min.Y), rgba.Stride, 4*w, h) {
			return jpegEncode(toRGBA(img), quality)
		}
		im.kind = C.TC_RGBX
		im.p0, im.s0 = ptr(rgba.Pix, rgba.PixOffset(b.Min.X, b.Min.Y)), C.int(rgba.Stride)
	case *rgbImage:
		if !planeOK(m.Pix, (b.Min.Y-m.Rect.Min.Y)*m.Stride+3*(b.Min.X-m.Rect.Min.X), m.Stride, 3*w, h) {
			return jpegEncode(toRGBA(img), quality)
		}
		im.kind = C.TC_RGB
		im.p0, im.s0 = ptr(m.Pix, (b.Min.Y-m.Rect.Min.Y)*m.Stride+3*(b.Min.X-m.Rect.Min.X)), C.int(m.Stride)
	default:
		return jpegEncode(toRGBA(img), quality)
	}
	var out *C.uint8_t
	var n C.size_t
	var msg [C.TC_MSG]C.char
	rc := C.tc_jpeg_encode(&im, C.int(quality), &out, &n, &msg[0])
	if err := nativeError(rc, &msg); err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// chromaShifts gives, for a subsampling ratio, how far x and y shift to index a chroma sample.
func chromaShifts(r image.YCbCrSubsampleRatio) (hs, vs int, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// planeOK reports whether pix holds rows of n bytes at off, off+stride, ... for rows rows: the
// C side reads exactly those.
func planeOK(pix []byte, off, stride, n, rows int) bool {
	if off < 0 || n <= 0 || rows <= 0 || stride < n || len(pix)-off < n {
		return false
	}
	return rows-1 <= (len(pix)-off-n)/stride
}

// toRGBA draws img onto a new RGBA image with its bounds moved to the origin.
func toRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
	return dst
}
