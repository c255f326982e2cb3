// Package imgconv is troupe's image-conversion stage, "a folder of images → JPEG": it decodes
// PNG, JPEG, GIF (first frame), BMP, TIFF and WebP images and re-encodes them as baseline JPEG.
// It is the stage behind the CLI's `builtin: imgconv` and the seed job
// (examples/imgconv/pipeline.yaml); examples/imgconv/plugin serves the same stage as a plugin.
//
// Convert does the work on one image. Stage adapts Convert to troupe's in-process stage signature
// (troupe.Func): one JPEG record out for each record in, with the input's format and dimensions
// added to its metadata (MetaFormat, MetaWidth, MetaHeight). Generate writes a deterministic
// folder of sample images, so that the job, its tests and the benchmarks run on a fresh machine.
//
// # Options
//
// In a spec, the stage's options are
//
//	stages:
//	  - name: convert
//	    builtin: imgconv
//	    options: {quality: 90, max_pixels: 100M}
//
// with these keys:
//
//   - quality: the JPEG quality, an integer 1 (smallest, worst) to 100 (largest, best).
//     Default 90 (DefaultQuality).
//   - max_pixels: the largest image, as width × height, that is decoded: a positive integer or a
//     string with a decimal K, M or G suffix, optionally followed by P ("100M", "2.5MP",
//     "40000000"). Default 100M (DefaultMaxPixels), about 400 MB once decoded to RGBA.
//
// SpecOptions declares them for a spec (Builtin registers the stage with package stages), so that
// a bad value is reported at its line and column before the run starts; ParseOptions reads them
// from the map a JSON decoder produces (the plugin's configuration). In Go, the same settings
// are the fields of Options, whose zero value means the defaults.
//
// # Failures
//
// A bad image is an error for that record only, never a panic and never the end of the run:
// Stage returns an error naming the record's key ("decode input/a.png: truncated PNG:
// unexpected EOF"), which the runtime retries up to the stage's attempts and then writes to the
// dead-letter output with that reason. The errors wrap ErrNotImage (empty input, or no format
// this package reads), ErrCorrupt (starts like a known format but does not decode: truncated,
// damaged, an unsupported feature, or a decoder that panicked) or ErrTooLarge. Failures are
// deterministic: the same bytes fail the same way on every attempt.
//
// Decompression bombs are refused from the header, before any pixel is allocated: Convert reads
// the image's dimensions first and fails with ErrTooLarge when width × height exceeds max_pixels
// or a side exceeds 65535 pixels (JPEG's limit), so a tiny file claiming to be 50000×50000 costs
// next to nothing.
//
// JPEG has no transparency: transparent and translucent pixels are composited onto white.
//
// # Codecs
//
// PNG and JPEG, the formats of nearly every folder of pictures, go through native libraries
// when the package is built with cgo (the default wherever a C compiler is found): JPEG
// decoding and encoding through libjpeg-turbo's libjpeg API, PNG decoding through libpng and
// zlib (on Debian: libjpeg62-turbo-dev, libpng-dev and zlib1g-dev, which the build links from
// the system). Where the system has libdeflate (libdeflate.so.0, Debian's libdeflate0, loaded at
// run time: the build does not need it), it inflates PNG image data instead of zlib, about 1.6
// times as fast; the pixels are the same. GIF, BMP, TIFF and WebP are pure Go always: BMP, TIFF
// and WebP through golang.org/x/image, GIF through the package's own decoder of the first frame
// (gif.go), which gives image/gif's frame and errors from the file in memory, copying each LZW
// code from the frame's earlier output. Codec names what a build uses; `troupe version` and the
// summary of a run of the imgconv builtin print it.
//
// Built with CGO_ENABLED=0 (or where there is no C compiler), the package uses the pure-Go
// codecs of the standard library instead, with the same options and error kinds, and output of
// the same kind (a baseline JPEG, 4:2:0 for colour, one component for grey, the standard
// quantisation tables scaled by quality, the same dimensions); pixels differ by rounding only
// (the tests hold the two to a PSNR bound), and the speed differs.
// To force the pure-Go codecs for a program or a test run, build without cgo, or with the
// imgconv_purego tag where cgo must stay on for other packages (or where the C headers are
// missing):
//
//	CGO_ENABLED=0 go build ./cmd/troupe
//	CGO_ENABLED=0 go test ./stages/imgconv
//	go build -tags imgconv_purego ./cmd/troupe
//
// The native path does less work than decoding to RGB and encoding that: a YCbCr JPEG is
// decoded to its planes as stored (no upsampling, no colour conversion) and handed to the
// encoder as raw 4:2:0 data, its chroma averaged down only if it was sampled more finely. For an
// 8-bit, non-interlaced PNG (nearly all), libpng reads and checks the chunks before the image
// data; the image data is then inflated in one piece, its row filters undone in place, and the
// pixels written as RGB (or grey) in place, transparency composited onto white, for the encoder
// to read as they are. Other PNGs go through libpng's own row transforms, to RGBA. Each chunk's
// CRC-32 is checked, but not zlib's Adler-32 of the same bytes (the pure-Go decoder checks
// both). Pixel buffers are
// pooled, so a worker converting a folder of photographs allocates them once, not once an
// image. The header is read (and the size checked against max_pixels) before any buffer is
// sized, in C as in Go.
//
// The C libraries report fatal errors through a handler that must not return; the wrappers'
// handlers (codec_cgo.c) longjmp back to the entry point, which frees what the library held
// and returns the message, so a malformed file is a Go error (ErrCorrupt, with the library's
// words: "truncated JPEG: premature end of file: unexpected EOF", "corrupt PNG: IHDR: CRC
// error"), never a crash or an abort of the process. libjpeg's warnings about corrupt or missing
// data are errors too (it would otherwise hand back an image with invented pixels), and a
// progressive JPEG may have at most 500 scans. A CMYK or YCCK JPEG goes to the pure-Go decoder,
// which knows Adobe's conventions for them.
//
// codec_std.go is the seam: the functions each variant defines and the contract they keep.
package imgconv
