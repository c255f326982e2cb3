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
// The codecs are pure Go (the standard library and golang.org/x/image), so the package builds
// with CGO_ENABLED=0. PNG and JPEG decoding and JPEG encoding sit behind the functions of
// codec_std.go, which a native (cgo) variant can replace behind a build constraint; the file
// states the contract such a variant keeps.
package imgconv
