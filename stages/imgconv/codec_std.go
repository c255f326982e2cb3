//go:build !cgo || imgconv_purego

package imgconv

// This file is the codec seam: the PNG and JPEG decoders and the JPEG encoder, here the pure-Go
// ones of the standard library. Everything else in the package (format sniffing, the size check
// before decoding, error classification, compositing onto white) is shared by every variant.
//
// The native variant (libjpeg-turbo and libpng through cgo) is codec_cgo.go, built when cgo is
// enabled and the imgconv_purego tag is not set; this file takes the opposite constraint, so that exactly one of them defines these
// functions. Each must keep this contract:
//
//   - pngConfig and jpegConfig read only the header: the width, height and colour model, without
//     allocating pixels. Convert refuses oversized images between config and decode, which is
//     what makes a decompression bomb cheap.
//   - pngDecode and jpegDecode decode the whole image in data. An error for truncated input
//     should wrap io.ErrUnexpectedEOF (or say so at the end of its text); a "png: " or "jpeg: "
//     prefix is dropped from messages. The result may be any image.Image; *image.YCbCr,
//     *image.Gray, *image.RGBA and *image.NRGBA reach the encoder without a per-pixel copy.
//   - jpegEncode writes img as a baseline JPEG at quality 1..100 (always opaque: Convert has
//     composited any transparency onto white): 4:2:0 YCbCr for colour, one component for
//     *image.Gray, with the standard quantisation tables scaled by quality.
//   - recycle may keep the pixels of an image that Convert decoded and no longer uses, for the
//     decoders to reuse; codecName says what the codecs are, for Codec.
//
// Convert recovers a Go panic in these functions and reports it as a corrupt image; a native
// library must instead never crash or abort the process on hostile input.

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
)

// codecName is what Codec reports.
const codecName = "pure Go (image/jpeg, image/png)"

// recycle does nothing: the standard decoders allocate their own images.
func recycle(image.Image) {}

func pngConfig(data []byte) (image.Config, error) { return png.DecodeConfig(bytes.NewReader(data)) }
func pngDecode(data []byte) (image.Image, error)  { return png.Decode(bytes.NewReader(data)) }

func jpegConfig(data []byte) (image.Config, error) { return jpeg.DecodeConfig(bytes.NewReader(data)) }
func jpegDecode(data []byte) (image.Image, error)  { return jpeg.Decode(bytes.NewReader(data)) }

func jpegEncode(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
