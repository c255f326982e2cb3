// Declarations shared by codec_cgo.go and codec_cgo.c (built only with cgo).
#ifndef TROUPE_IMGCONV_CODEC_CGO_H
#define TROUPE_IMGCONV_CODEC_CGO_H

#include <stddef.h>
#include <stdint.h>

// Results of the entry points; on anything but TC_OK the msg buffer holds the library's words.
enum { TC_OK = 0, TC_ERR = 1, TC_EOF = 2 };
#define TC_MSG 256

typedef struct {
	int width, height, components, colorspace, progressive;
	int ycbcr, gray, rgb;
	int h[4], v[4], wblocks[4], hblocks[4];
	char msg[TC_MSG];
} tc_jpeg_info;

typedef struct {
	uint8_t *y, *cb, *cr;
	int ystride, cstride, yrows, crows;
} tc_planes;

enum { TC_YCBCR = 1, TC_GRAY = 2, TC_RGBX = 3, TC_RGB = 4 };

typedef struct {
	int kind, width, height;
	const uint8_t *p0, *p1, *p2; // Y, Cb, Cr; or the pixels for TC_GRAY and TC_RGBX
	int s0, s1;                  // strides: Y (or pixels), chroma
	int hshift, vshift;          // TC_YCBCR: the chroma sample of (x, y) is at (x>>hshift, y>>vshift)
} tc_image;

typedef struct {
	int width, height, color_type, bit_depth, trns, interlace;
	char msg[TC_MSG];
} tc_png_info;


const char *tc_versions(void);
int tc_jpeg_header(const uint8_t *data, size_t len, tc_jpeg_info *info);
int tc_jpeg_decode_raw(const uint8_t *data, size_t len, int width, int height, tc_planes *p, char *msg);
int tc_jpeg_decode_pixels(const uint8_t *data, size_t len, int width, int height, int gray, uint8_t *pix,
                          int stride, char *msg);
int tc_jpeg_encode(const tc_image *im, int quality, uint8_t **out, size_t *outlen, char *msg);
int tc_png_header(const uint8_t *data, size_t len, tc_png_info *info);
int tc_png_decode(const uint8_t *data, size_t len, int width, int height, int channels, uint8_t *pix, int stride,
                  char *msg);
int tc_png_decode8(const uint8_t *data, size_t len, int width, int height, uint8_t *filt, size_t filtlen,
                   uint8_t *out, size_t outlen, int zlib_only, char *msg);
int tc_have_libdeflate(void);

#endif
