//go:build cgo && !imgconv_purego

// The native codecs of codec_cgo.go: libjpeg-turbo through the libjpeg API, and libpng.
//
// Every entry point runs a whole operation (header, decode or encode) in one call, so that no C
// state outlives it and no Go pointer is kept after it returns. Both libraries report fatal
// errors by calling a handler that must not return; ours copy the message and longjmp back to
// the entry point, which frees what the library allocated and returns an error code. Nothing
// here calls exit or abort, and nothing allocates pixels: the caller passes buffers sized from
// a header it has already checked.

#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <zlib.h>

#include "codec_cgo.h"

#define TC_STR_(x) #x
#define TC_STR(x) TC_STR_(x)

int tc_have_libdeflate(void);

const char *tc_versions(void) {
	static char v[128];
	snprintf(v, sizeof v, "libjpeg-turbo %s / libpng %s / zlib %s%s", TC_STR(LIBJPEG_TURBO_VERSION),
	         png_get_libpng_ver(NULL), zlibVersion(), tc_have_libdeflate() ? " / libdeflate" : "");
	return v;
}

/* ---- libjpeg: errors ---- */

struct tc_jerr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	int eof;
	char *msg; /* TC_MSG bytes */
};

static void tc_jerror_exit(j_common_ptr c) {
	struct tc_jerr *e = (struct tc_jerr *)c->err;
	char buf[JMSG_LENGTH_MAX];
	(*c->err->format_message)(c, buf);
	snprintf(e->msg, TC_MSG, "%s", buf);
	longjmp(e->jb, 1);
}

/* Warnings are errors, except those about harmless oddities: libjpeg would otherwise hand back
 * an image with made-up pixels for a truncated or corrupt file (grey blocks after the damage),
 * where the pure-Go decoder fails. */
static void tc_jemit(j_common_ptr c, int level) {
	struct tc_jerr *e = (struct tc_jerr *)c->err;
	if (level >= 0) {
		return; /* trace messages */
	}
	switch (c->err->msg_code) {
	case JWRN_EXTRANEOUS_DATA: /* junk before a marker: the Go decoder skips it too */
	case JWRN_JFIF_MAJOR:
	case JWRN_ADOBE_XFORM:
	case JWRN_BOGUS_ICC:
		return;
	case JWRN_JPEG_EOF:
		e->eof = 1;
		snprintf(e->msg, TC_MSG, "premature end of file");
		longjmp(e->jb, 1);
	}
	tc_jerror_exit(c);
}

static struct jpeg_error_mgr *tc_jerr_init(struct tc_jerr *e, char *msg) {
	jpeg_std_error(&e->pub);
	e->pub.error_exit = tc_jerror_exit;
	e->pub.emit_message = tc_jemit;
	e->eof = 0;
	e->msg = msg;
	msg[0] = 0;
	return &e->pub;
}

/* A progressive file may declare any number of scans, each a pass over the whole image: limit
 * them, as libjpeg-turbo's TurboJPEG API does (TJFLAG_LIMITSCANS), so that a small hostile file
 * cannot keep a worker busy for minutes. */
#define TC_MAX_SCANS 500

static void tc_jprogress(j_common_ptr c) {
	j_decompress_ptr d = (j_decompress_ptr)c;
	if (d->is_decompressor && d->input_scan_number > TC_MAX_SCANS) {
		struct tc_jerr *e = (struct tc_jerr *)c->err;
		snprintf(e->msg, TC_MSG, "progressive JPEG with more than %d scans", TC_MAX_SCANS);
		longjmp(e->jb, 1);
	}
}

/* Starts a decompressor on data and reads the header. Errors longjmp to the caller's setjmp. */
static void tc_jstart(j_decompress_ptr d, struct jpeg_progress_mgr *prog, const uint8_t *data, size_t len) {
	jpeg_create_decompress(d);
	prog->progress_monitor = tc_jprogress;
	d->progress = prog;
	jpeg_mem_src(d, (const unsigned char *)data, (unsigned long)len);
	jpeg_read_header(d, TRUE);
}

static int tc_jfail(j_decompress_ptr d, struct tc_jerr *e) {
	jpeg_destroy_decompress(d);
	return e->eof ? TC_EOF : TC_ERR;
}

int tc_jpeg_header(const uint8_t *data, size_t len, tc_jpeg_info *info) {
	struct jpeg_decompress_struct d;
	struct jpeg_progress_mgr prog;
	struct tc_jerr jerr;
	memset(&d, 0, sizeof d);
	d.err = tc_jerr_init(&jerr, info->msg);
	if (setjmp(jerr.jb)) {
		return tc_jfail(&d, &jerr);
	}
	tc_jstart(&d, &prog, data, len);
	info->width = (int)d.image_width;
	info->height = (int)d.image_height;
	info->components = d.num_components;
	info->colorspace = d.jpeg_color_space;
	info->ycbcr = d.jpeg_color_space == JCS_YCbCr;
	info->gray = d.jpeg_color_space == JCS_GRAYSCALE;
	info->rgb = d.jpeg_color_space == JCS_RGB;
	info->progressive = d.progressive_mode;
	for (int i = 0; i < d.num_components && i < 4; i++) {
		info->h[i] = d.comp_info[i].h_samp_factor;
		info->v[i] = d.comp_info[i].v_samp_factor;
		info->wblocks[i] = (int)d.comp_info[i].width_in_blocks;
		info->hblocks[i] = (int)d.comp_info[i].height_in_blocks;
	}
	jpeg_destroy_decompress(&d);
	return TC_OK;
}

static int tc_jcheck(j_decompress_ptr d, int width, int height, char *msg) {
	if ((int)d->image_width != width || (int)d->image_height != height) {
		snprintf(msg, TC_MSG, "header changed between reads");
		return 0;
	}
	return 1;
}

int tc_jpeg_decode_raw(const uint8_t *data, size_t len, int width, int height, tc_planes *p, char *msg) {
	struct jpeg_decompress_struct d;
	struct jpeg_progress_mgr prog;
	struct tc_jerr jerr;
	memset(&d, 0, sizeof d);
	d.err = tc_jerr_init(&jerr, msg);
	if (setjmp(jerr.jb)) {
		return tc_jfail(&d, &jerr);
	}
	tc_jstart(&d, &prog, data, len);
	if (!tc_jcheck(&d, width, height, msg)) {
		jpeg_destroy_decompress(&d);
		return TC_ERR;
	}
	if (d.num_components != 3 || d.jpeg_color_space != JCS_YCbCr) {
		snprintf(msg, TC_MSG, "not a YCbCr image");
		jpeg_destroy_decompress(&d);
		return TC_ERR;
	}
	uint8_t *base[3] = {p->y, p->cb, p->cr};
	int stride[3] = {p->ystride, p->cstride, p->cstride};
	int rows[3] = {p->yrows, p->crows, p->crows};
	for (int ci = 0; ci < 3; ci++) {
		/* The inverse DCT writes whole blocks: each row of a plane must hold them. */
		if ((long)d.comp_info[ci].width_in_blocks * DCTSIZE > stride[ci]) {
			snprintf(msg, TC_MSG, "plane %d too narrow", ci);
			jpeg_destroy_decompress(&d);
			return TC_ERR;
		}
	}
	d.raw_data_out = TRUE; /* the planes as stored: no upsampling, no colour conversion */
	d.out_color_space = JCS_YCbCr;
	d.dct_method = JDCT_ISLOW;
	jpeg_start_decompress(&d);

	int lines = d.max_v_samp_factor * DCTSIZE;
	int maxstride = p->ystride > p->cstride ? p->ystride : p->cstride;
	JSAMPROW scratch = (JSAMPROW)(*d.mem->alloc_small)((j_common_ptr)&d, JPOOL_IMAGE, (size_t)maxstride);
	JSAMPARRAY arr[3];
	for (int ci = 0; ci < 3; ci++) {
		arr[ci] = (JSAMPARRAY)(*d.mem->alloc_small)((j_common_ptr)&d, JPOOL_IMAGE, (size_t)lines * sizeof(JSAMPROW));
	}
	for (int imcu = 0; d.output_scanline < d.output_height; imcu++) {
		for (int ci = 0; ci < 3; ci++) {
			int n = d.comp_info[ci].v_samp_factor * DCTSIZE;
			for (int r = 0; r < n; r++) {
				long row = (long)imcu * n + r;
				/* Rows past the plane (the last block row's padding) go to a scratch row. */
				arr[ci][r] = row < rows[ci] ? base[ci] + row * (long)stride[ci] : scratch;
			}
		}
		if (jpeg_read_raw_data(&d, arr, (JDIMENSION)lines) == 0) {
			snprintf(msg, TC_MSG, "decoder suspended");
			jpeg_destroy_decompress(&d);
			return TC_ERR;
		}
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return TC_OK;
}

int tc_jpeg_decode_pixels(const uint8_t *data, size_t len, int width, int height, int gray, uint8_t *pix,
                          int stride, char *msg) {
	struct jpeg_decompress_struct d;
	struct jpeg_progress_mgr prog;
	struct tc_jerr jerr;
	memset(&d, 0, sizeof d);
	d.err = tc_jerr_init(&jerr, msg);
	if (setjmp(jerr.jb)) {
		return tc_jfail(&d, &jerr);
	}
	tc_jstart(&d, &prog, data, len);
	if (!tc_jcheck(&d, width, height, msg)) {
		jpeg_destroy_decompress(&d);
		return TC_ERR;
	}
	int want = gray ? 1 : 4;
	if (stride < width * want) {
		snprintf(msg, TC_MSG, "buffer too narrow");
		jpeg_destroy_decompress(&d);
		return TC_ERR;
	}
	d.out_color_space = gray ? JCS_GRAYSCALE : JCS_EXT_RGBA; /* alpha is set to 0xFF */
	d.dct_method = JDCT_ISLOW;
	jpeg_start_decompress(&d);
	if (d.output_components != want || (int)d.output_width != width || (int)d.output_height != height) {
		snprintf(msg, TC_MSG, "unexpected output layout");
		jpeg_destroy_decompress(&d);
		return TC_ERR;
	}
	JSAMPROW rows[16];
	while (d.output_scanline < d.output_height) {
		int n = (int)(d.output_height - d.output_scanline);
		if (n > 16) {
			n = 16;
		}
		for (int r = 0; r < n; r++) {
			rows[r] = pix + (long)(d.output_scanline + r) * stride;
		}
		if (jpeg_read_scanlines(&d, rows, (JDIMENSION)n) == 0) {
			snprintf(msg, TC_MSG, "decoder suspended");
			jpeg_destroy_decompress(&d);
			return TC_ERR;
		}
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return TC_OK;
}

/* ---- libjpeg: encoding ---- */

/* A destination growing a malloc'd buffer, which the caller frees (on success and on error). */
struct tc_dest {
	struct jpeg_destination_mgr pub;
	uint8_t *buf;
	size_t cap;
};

static void tc_dest_init(j_compress_ptr c) {
	struct tc_dest *d = (struct tc_dest *)c->dest;
	d->pub.next_output_byte = d->buf;
	d->pub.free_in_buffer = d->cap;
}

static boolean tc_dest_empty(j_compress_ptr c) {
	struct tc_dest *d = (struct tc_dest *)c->dest;
	size_t ncap = d->cap * 2;
	uint8_t *nb = realloc(d->buf, ncap);
	if (nb == NULL) {
		ERREXIT1(c, JERR_OUT_OF_MEMORY, 10);
	}
	d->pub.next_output_byte = nb + d->cap;
	d->pub.free_in_buffer = ncap - d->cap;
	d->buf = nb;
	d->cap = ncap;
	return TRUE;
}

static void tc_dest_term(j_compress_ptr c) { (void)c; }

/* Copies rows of a plane into a strip padded to whole blocks, replicating the last column and
 * row as libjpeg's own preprocessing does. */
static void tc_fill_strip(JSAMPARRAY strip, int nrows, int padw, const uint8_t *plane, int stride, int w, int h,
                          int first) {
	for (int r = 0; r < nrows; r++) {
		int src = first + r;
		if (src >= h) {
			src = h - 1;
		}
		const uint8_t *in = plane + (long)src * stride;
		memcpy(strip[r], in, (size_t)w);
		if (padw > w) {
			memset(strip[r] + w, in[w - 1], (size_t)(padw - w));
		}
	}
}

/* Fills a strip of 4:2:0 chroma rows (first, first+1, ...) from a plane subsampled by
 * (hshift, vshift) (a chroma sample of pixel (x, y) is at (x>>hshift, y>>vshift)): each output
 * sample averages the plane's samples of its 2×2 pixels, the edges replicated. This is what
 * libjpeg's own path computes from the same pixels (upsampling to full resolution by repetition,
 * then its 2×2 downsampling) without ever building full-resolution rows. */
static void tc_fill_chroma420(JSAMPARRAY strip, int nrows, int padw, const uint8_t *plane, int stride, int w, int h,
                              int hshift, int vshift, int first) {
	int cw = (w + 1) / 2, ch = (h + 1) / 2;
	if (hshift == 1 && vshift == 1) {
		tc_fill_strip(strip, nrows, padw, plane, stride, cw, ch, first);
		return;
	}
	for (int r = 0; r < nrows; r++) {
		int cy = first + r;
		if (cy >= ch) {
			cy = ch - 1;
		}
		int y0 = 2 * cy, y1 = 2 * cy + 1 < h ? 2 * cy + 1 : h - 1;
		const uint8_t *a = plane + (long)(y0 >> vshift) * stride;
		const uint8_t *b = plane + (long)(y1 >> vshift) * stride;
		JSAMPROW o = strip[r];
		if (hshift == 0) {
			int full = w / 2; /* output samples whose two columns both exist */
			for (int x = 0; x < full; x++) {
				o[x] = (JSAMPLE)((a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1] + 2) >> 2);
			}
			if (cw > full) {
				o[full] = (JSAMPLE)((a[w - 1] + b[w - 1] + 1) >> 1);
			}
		} else {
			for (int x = 0; x < cw; x++) {
				int x0 = (2 * x) >> hshift, x1 = (2 * x + 1 < w ? 2 * x + 1 : w - 1) >> hshift;
				o[x] = (JSAMPLE)((a[x0] + a[x1] + b[x0] + b[x1] + 2) >> 2);
			}
		}
		if (padw > cw) {
			memset(o + cw, o[cw - 1], (size_t)(padw - cw));
		}
	}
}

int tc_jpeg_encode(const tc_image *im, int quality, uint8_t **out, size_t *outlen, char *msg) {
	struct jpeg_compress_struct c;
	struct tc_jerr jerr;
	struct tc_dest *dest = calloc(1, sizeof *dest);
	*out = NULL;
	*outlen = 0;
	if (dest == NULL) {
		snprintf(msg, TC_MSG, "out of memory");
		return TC_ERR;
	}
	dest->cap = (size_t)im->width * (size_t)im->height / 4 + 16384;
	dest->buf = malloc(dest->cap);
	if (dest->buf == NULL) {
		free(dest);
		snprintf(msg, TC_MSG, "out of memory");
		return TC_ERR;
	}
	memset(&c, 0, sizeof c);
	c.err = tc_jerr_init(&jerr, msg);
	if (setjmp(jerr.jb)) {
		jpeg_destroy_compress(&c);
		free(dest->buf);
		free(dest);
		return TC_ERR;
	}
	jpeg_create_compress(&c);
	dest->pub.init_destination = tc_dest_init;
	dest->pub.empty_output_buffer = tc_dest_empty;
	dest->pub.term_destination = tc_dest_term;
	c.dest = &dest->pub;
	c.image_width = (JDIMENSION)im->width;
	c.image_height = (JDIMENSION)im->height;
	switch (im->kind) {
	case TC_GRAY:
		c.in_color_space = JCS_GRAYSCALE;
		c.input_components = 1;
		break;
	case TC_RGBX:
		c.in_color_space = JCS_EXT_RGBX; /* the fourth byte (opaque alpha) is skipped */
		c.input_components = 4;
		break;
	case TC_RGB:
		c.in_color_space = JCS_EXT_RGB;
		c.input_components = 3;
		break;
	default: /* TC_YCBCR */
		c.in_color_space = JCS_YCbCr;
		c.input_components = 3;
	}
	jpeg_set_defaults(&c); /* baseline, standard Huffman tables, 4:2:0 for colour */
	jpeg_set_quality(&c, quality, TRUE);
	c.dct_method = JDCT_ISLOW;
	c.raw_data_in = im->kind == TC_YCBCR;
	jpeg_start_compress(&c, TRUE);

	int w = im->width, h = im->height;
	if (im->kind == TC_YCBCR) {
		/* Raw data in: the luma plane as it is and chroma brought to 4:2:0 (a copy when it is
		 * already): no colour conversion, no full-resolution chroma. */
		int lines = c.max_v_samp_factor * DCTSIZE; /* 16 */
		int padw[3];
		JSAMPARRAY strip[3];
		for (int ci = 0; ci < 3; ci++) {
			padw[ci] = (int)c.comp_info[ci].width_in_blocks * DCTSIZE;
			strip[ci] = (*c.mem->alloc_sarray)((j_common_ptr)&c, JPOOL_IMAGE, (JDIMENSION)padw[ci],
			                                   (JDIMENSION)(c.comp_info[ci].v_samp_factor * DCTSIZE));
		}
		for (int imcu = 0; c.next_scanline < c.image_height; imcu++) {
			tc_fill_strip(strip[0], lines, padw[0], im->p0, im->s0, w, h, imcu * lines);
			tc_fill_chroma420(strip[1], lines / 2, padw[1], im->p1, im->s1, w, h, im->hshift, im->vshift,
			                  imcu * lines / 2);
			tc_fill_chroma420(strip[2], lines / 2, padw[2], im->p2, im->s1, w, h, im->hshift, im->vshift,
			                  imcu * lines / 2);
			if (jpeg_write_raw_data(&c, strip, (JDIMENSION)lines) == 0) {
				ERREXIT(&c, JERR_CANT_SUSPEND);
			}
		}
	} else {
		JSAMPROW rows[16];
		while (c.next_scanline < c.image_height) {
			int n = (int)(c.image_height - c.next_scanline);
			if (n > 16) {
				n = 16;
			}
			for (int r = 0; r < n; r++) {
				rows[r] = (JSAMPROW)(im->p0 + (long)(c.next_scanline + r) * im->s0);
			}
			jpeg_write_scanlines(&c, rows, (JDIMENSION)n);
		}
	}
	jpeg_finish_compress(&c);
	*out = dest->buf;
	*outlen = dest->cap - dest->pub.free_in_buffer;
	jpeg_destroy_compress(&c);
	free(dest);
	return TC_OK;
}

/* ---- libpng ---- */

struct tc_png_src {
	const uint8_t *data;
	size_t len, pos;
	int eof;
	char *msg;
};

static void tc_png_error(png_structp p, png_const_charp m) {
	struct tc_png_src *s = (struct tc_png_src *)png_get_error_ptr(p);
	snprintf(s->msg, TC_MSG, "%s", m);
	png_longjmp(p, 1);
}

static void tc_png_warn(png_structp p, png_const_charp m) {
	(void)p;
	(void)m;
}

static void tc_png_read(png_structp p, png_bytep out, size_t n) {
	struct tc_png_src *s = (struct tc_png_src *)png_get_io_ptr(p);
	if (n > s->len - s->pos) {
		s->eof = 1;
		png_error(p, "unexpected EOF");
	}
	memcpy(out, s->data + s->pos, n);
	s->pos += n;
}

/* Chunks that change no pixel of ours (no gamma or colour management is applied, as in the
 * pure-Go decoder): skipped unread, so that a compressed text or ICC profile is not inflated. */
static const png_byte tc_png_ignored[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0tIME\0pHYs\0hIST\0bKGD\0"
                                         "sBIT\0oFFs\0pCAL\0sCAL\0gAMA\0cHRM\0sRGB";

static png_structp tc_png_open(struct tc_png_src *src, png_infop *info) {
	png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, src, tc_png_error, tc_png_warn);
	if (p == NULL) {
		return NULL;
	}
	*info = png_create_info_struct(p);
	if (*info == NULL) {
		png_destroy_read_struct(&p, NULL, NULL);
		return NULL;
	}
	return p;
}

int tc_png_header(const uint8_t *data, size_t len, tc_png_info *info) {
	struct tc_png_src src = {data, len, 0, 0, info->msg};
	png_infop pi = NULL;
	info->msg[0] = 0;
	png_structp p = tc_png_open(&src, &pi);
	if (p == NULL) {
		snprintf(info->msg, TC_MSG, "out of memory");
		return TC_ERR;
	}
	if (setjmp(png_jmpbuf(p))) {
		png_destroy_read_struct(&p, &pi, NULL);
		return src.eof ? TC_EOF : TC_ERR;
	}
	png_set_read_fn(p, &src, tc_png_read);
	png_set_keep_unknown_chunks(p, PNG_HANDLE_CHUNK_NEVER, tc_png_ignored, (int)(sizeof tc_png_ignored / 5));
	png_set_user_limits(p, 0x7fffffff, 0x7fffffff); /* the caller applies its own limits */
	png_read_info(p, pi);
	info->width = (int)png_get_image_width(p, pi);
	info->height = (int)png_get_image_height(p, pi);
	info->color_type = png_get_color_type(p, pi);
	info->bit_depth = png_get_bit_depth(p, pi);
	info->trns = png_get_valid(p, pi, PNG_INFO_tRNS) != 0;
	info->interlace = png_get_interlace_type(p, pi) != PNG_INTERLACE_NONE;
	png_destroy_read_struct(&p, &pi, NULL);
	return TC_OK;
}

/* Composites a row of non-premultiplied RGBA onto white in place, c·α + (1-α)·white rounded, as
 * nrgbaOverWhite in convert.go does, leaving it opaque. */
static void tc_over_white(uint8_t *row, int width) {
	for (int x = 0; x < width; x++, row += 4) {
		unsigned a = row[3];
		if (a == 0xff) {
			continue;
		}
		unsigned t = (0xff - a) * 0xff + 127;
		row[0] = (uint8_t)((row[0] * a + t) / 0xff);
		row[1] = (uint8_t)((row[1] * a + t) / 0xff);
		row[2] = (uint8_t)((row[2] * a + t) / 0xff);
		row[3] = 0xff;
	}
}

int tc_png_decode(const uint8_t *data, size_t len, int width, int height, int channels, uint8_t *pix, int stride,
                  char *msg) {
	struct tc_png_src src = {data, len, 0, 0, msg};
	png_infop pi = NULL;
	msg[0] = 0;
	png_structp p = tc_png_open(&src, &pi);
	if (p == NULL) {
		snprintf(msg, TC_MSG, "out of memory");
		return TC_ERR;
	}
	if (setjmp(png_jmpbuf(p))) {
		png_destroy_read_struct(&p, &pi, NULL);
		return src.eof ? TC_EOF : TC_ERR;
	}
	png_set_read_fn(p, &src, tc_png_read);
	png_set_keep_unknown_chunks(p, PNG_HANDLE_CHUNK_NEVER, tc_png_ignored, (int)(sizeof tc_png_ignored / 5));
	png_set_user_limits(p, 0x7fffffff, 0x7fffffff);
#ifdef PNG_IGNORE_ADLER32
	/* Each IDAT chunk's CRC-32 (still checked) covers the same bytes as zlib's Adler-32. */
	png_set_option(p, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
	png_read_info(p, pi);
	if ((int)png_get_image_width(p, pi) != width || (int)png_get_image_height(p, pi) != height) {
		png_error(p, "header changed between reads");
	}
	int ct = png_get_color_type(p, pi);
	int depth = png_get_bit_depth(p, pi);
	int trns = png_get_valid(p, pi, PNG_INFO_tRNS) != 0;
	if (depth == 16) {
		png_set_strip_16(p); /* the high byte, as the pure-Go path keeps */
	}
	if (ct == PNG_COLOR_TYPE_PALETTE) {
		png_set_palette_to_rgb(p);
	}
	if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) {
		png_set_expand_gray_1_2_4_to_8(p);
	}
	if (trns) {
		png_set_tRNS_to_alpha(p);
	}
	if (channels == 4) {
		if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) {
			png_set_gray_to_rgb(p);
		}
		if (!(ct & PNG_COLOR_MASK_ALPHA) && !trns) {
			png_set_filler(p, 0xff, PNG_FILLER_AFTER);
		}
	} else if (ct != PNG_COLOR_TYPE_GRAY || trns) {
		png_error(p, "not an opaque grey image");
	}
	int passes = png_set_interlace_handling(p);
	png_read_update_info(p, pi);
	if (png_get_rowbytes(p, pi) != (size_t)width * (size_t)channels || stride < width * channels) {
		png_error(p, "unexpected row layout");
	}
	int alpha = channels == 4 && ((ct & PNG_COLOR_MASK_ALPHA) || trns);
	for (int pass = 0; pass < passes; pass++) {
		for (int y = 0; y < height; y++) {
			png_read_row(p, pix + (long)y * stride, NULL);
			if (alpha && pass == passes - 1) {
				tc_over_white(pix + (long)y * stride, width); /* while the row is in cache */
			}
		}
	}
	png_read_end(p, NULL);
	png_destroy_read_struct(&p, &pi, NULL);
	return TC_OK;
}

/* ---- PNG: the fast path for 8-bit, non-interlaced images ----
 *
 * libpng inflates one row at a time, which keeps zlib off its fast loop at the end of every row,
 * and expands pixels through its generic transforms. For the common case (8 bits a sample, no
 * interlacing: nearly every PNG) tc_png_decode8 lets libpng read and check everything before the
 * image data (signature, IHDR, PLTE, tRNS, chunk CRCs), then takes over at the first IDAT: it
 * checks the IDAT chunks' CRCs, inflates the whole stream in one call into the caller's buffer,
 * undoes the row filters in place and writes the pixels in the layout the JPEG encoder takes,
 * transparency composited onto white as tc_over_white does.
 *
 * The inflater is libdeflate when the system has it (libdeflate.so.0, loaded at run time: the
 * build does not need it), which inflates about twice as fast as zlib; zlib otherwise. Both give
 * the same bytes or the same kind of error. */

typedef struct libdeflate_decompressor tc_ld_dec;
static struct {
	tc_ld_dec *(*alloc)(void);
	void (*free)(tc_ld_dec *);
	int (*inflate)(tc_ld_dec *, const void *, size_t, void *, size_t, size_t *, size_t *);
	uint32_t (*crc32)(uint32_t, const void *, size_t);
} tc_ld;
static pthread_once_t tc_ld_once = PTHREAD_ONCE_INIT;

static void tc_ld_load(void) {
	void *h = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		return;
	}
	tc_ld.alloc = (tc_ld_dec * (*)(void)) dlsym(h, "libdeflate_alloc_decompressor");
	tc_ld.free = (void (*)(tc_ld_dec *))dlsym(h, "libdeflate_free_decompressor");
	tc_ld.inflate = (int (*)(tc_ld_dec *, const void *, size_t, void *, size_t, size_t *, size_t *))dlsym(
	    h, "libdeflate_deflate_decompress_ex");
	tc_ld.crc32 = (uint32_t(*)(uint32_t, const void *, size_t))dlsym(h, "libdeflate_crc32");
	if (!tc_ld.alloc || !tc_ld.free || !tc_ld.inflate || !tc_ld.crc32) {
		memset(&tc_ld, 0, sizeof tc_ld);
		dlclose(h);
	}
}

int tc_have_libdeflate(void) {
	pthread_once(&tc_ld_once, tc_ld_load);
	return tc_ld.alloc != NULL;
}

static uint32_t tc_be32(const uint8_t *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t tc_crc32(const uint8_t *p, size_t n, int zlib_only) {
	if (tc_ld.crc32 != NULL && !zlib_only) {
		return tc_ld.crc32(0, p, n);
	}
	return (uint32_t)crc32(0, p, (uInt)n);
}

/* The IDAT chunks' data, in order. */
struct tc_idat {
	const uint8_t **p;
	size_t *n;
	int count;
	size_t total;
};

/* Inflates the zlib stream split over the IDAT chunks into out[0:outlen] with zlib; the stream's
 * Adler-32 is not checked (each chunk's CRC-32 was), as libpng is told too. */
static int tc_inflate_zlib(const struct tc_idat *in, uint8_t *out, size_t outlen, char *msg) {
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit(&z) != Z_OK) {
		snprintf(msg, TC_MSG, "out of memory");
		return TC_ERR;
	}
#if ZLIB_VERNUM >= 0x1290
	inflateValidate(&z, 0);
#endif
	z.next_out = out;
	int ret = Z_OK;
	size_t left = outlen;
	for (int i = 0; i < in->count && ret == Z_OK && left > 0; i++) {
		z.next_in = (Bytef *)in->p[i];
		size_t inleft = in->n[i];
		while (ret == Z_OK && left > 0 && (inleft > 0 || z.avail_in > 0)) {
			if (z.avail_in == 0) {
				z.avail_in = inleft > 0x40000000 ? 0x40000000 : (uInt)inleft;
				inleft -= z.avail_in;
			}
			z.avail_out = left > 0x40000000 ? 0x40000000 : (uInt)left;
			uInt before = z.avail_out;
			ret = inflate(&z, Z_NO_FLUSH);
			left -= before - z.avail_out;
			if (ret == Z_BUF_ERROR) {
				ret = Z_OK; /* no progress possible with this input: take the next chunk */
				break;
			}
		}
	}
	const char *zmsg = z.msg;
	inflateEnd(&z);
	if (left == 0) {
		return TC_OK; /* data beyond the image is ignored, as libpng does */
	}
	if (ret != Z_OK && ret != Z_STREAM_END) {
		snprintf(msg, TC_MSG, "IDAT: %s", zmsg != NULL ? zmsg : "inflate failed");
		return TC_ERR;
	}
	snprintf(msg, TC_MSG, "Not enough image data");
	return TC_ERR;
}

/* The same with libdeflate, which wants the whole stream in one piece. Returns -1 when the
 * stream holds more than outlen bytes: libdeflate then gives no output, so the caller falls
 * back to zlib, which stops at outlen as libpng does. */
static int tc_inflate_ld(const struct tc_idat *in, uint8_t *out, size_t outlen, char *msg) {
	const uint8_t *src = in->count == 1 ? in->p[0] : NULL;
	uint8_t *joined = NULL;
	if (src == NULL) {
		joined = malloc(in->total > 0 ? in->total : 1);
		if (joined == NULL) {
			snprintf(msg, TC_MSG, "out of memory");
			return TC_ERR;
		}
		size_t off = 0;
		for (int i = 0; i < in->count; i++) {
			memcpy(joined + off, in->p[i], in->n[i]);
			off += in->n[i];
		}
		src = joined;
	}
	int rc = TC_OK;
	/* The zlib header: deflate, a window of at most 32 KiB, no preset dictionary. */
	if (in->total < 2 || (src[0] & 0x0f) != 8 || (src[0] >> 4) > 7 || ((src[0] << 8) | src[1]) % 31 != 0 ||
	    (src[1] & 0x20) != 0) {
		snprintf(msg, TC_MSG, "IDAT: incorrect header check");
		rc = TC_ERR;
	} else {
		tc_ld_dec *d = tc_ld.alloc();
		if (d == NULL) {
			snprintf(msg, TC_MSG, "out of memory");
			rc = TC_ERR;
		} else {
			size_t inused = 0, got = 0;
			int r = tc_ld.inflate(d, src + 2, in->total - 2, out, outlen, &inused, &got);
			tc_ld.free(d);
			switch (r) {
			case 0: /* LIBDEFLATE_SUCCESS */
				if (got != outlen) {
					snprintf(msg, TC_MSG, "Not enough image data");
					rc = TC_ERR;
				}
				break;
			case 3: /* LIBDEFLATE_INSUFFICIENT_SPACE */
				rc = -1;
				break;
			default:
				snprintf(msg, TC_MSG, "IDAT: invalid compressed data");
				rc = TC_ERR;
			}
		}
	}
	free(joined);
	return rc;
}

static inline uint8_t tc_paeth(int a, int b, int c) {
	int pa = b - c, pb = a - c, pc;
	pc = pa + pb;
	pa = pa < 0 ? -pa : pa;
	pb = pb < 0 ? -pb : pb;
	pc = pc < 0 ? -pc : pc;
	if (pa <= pb && pa <= pc) {
		return (uint8_t)a;
	}
	return (uint8_t)(pb <= pc ? b : c);
}

/* Undoes a row's filter in place; prev is the previous row, unfiltered (NULL for the first), n a
 * multiple of the bytes per pixel. The body is instantiated for each bytes-per-pixel so that the
 * compiler sees it constant, and carries the left pixel (and for Paeth the upper-left one) in
 * locals: a loop reading back the byte it stored one pixel earlier waits on the store each time. */
#define TC_UNFILTER(BPP)                                                                                             \
	static int tc_unfilter##BPP(int ft, uint8_t *cur, const uint8_t *prev, size_t n) {                           \
		unsigned a[BPP], c[BPP];                                                                             \
		if (n < BPP) {                                                                                       \
			return ft <= 4;                                                                              \
		}                                                                                                    \
		if (prev == NULL) {                                                                                  \
			if (ft == 2) {                                                                               \
				return 1; /* Up with an upper row of zeros */                                        \
			} else if (ft == 4) {                                                                        \
				ft = 1; /* Paeth with b = c = 0 is a: Sub */                                         \
			}                                                                                            \
		}                                                                                                    \
		switch (ft) {                                                                                        \
		case 0:                                                                                              \
			return 1;                                                                                    \
		case 1:                                                                                              \
			_Pragma("GCC unroll 4") for (int k = 0; k < BPP; k++) a[k] = cur[k];                         \
			for (size_t i = BPP; i < n; i += BPP) {                                                      \
				_Pragma("GCC unroll 4") for (int k = 0; k < BPP; k++) {                              \
					a[k] = (uint8_t)(cur[i + k] + a[k]);                                         \
					cur[i + k] = (uint8_t)a[k];                                                  \
				}                                                                                    \
			}                                                                                            \
			return 1;                                                                                    \
		case 2:                                                                                              \
			for (size_t i = 0; i < n; i++)                                                               \
				cur[i] = (uint8_t)(cur[i] + prev[i]);                                                \
			return 1;                                                                                    \
		case 3:                                                                                              \
			_Pragma("GCC unroll 4") for (int k = 0; k < BPP; k++) {                                      \
				a[k] = (uint8_t)(cur[k] + (prev != NULL ? prev[k] >> 1 : 0));                        \
				cur[k] = (uint8_t)a[k];                                                              \
			}                                                                                            \
			if (prev == NULL) {                                                                          \
				for (size_t i = BPP; i < n; i += BPP) {                                              \
					_Pragma("GCC unroll 4") for (int k = 0; k < BPP; k++) {                      \
						a[k] = (uint8_t)(cur[i + k] + (a[k] >> 1));                          \
						cur[i + k] = (uint8_t)a[k];                                          \
					}                                                                            \
				}                                                                                    \
				return 1;                                                                            \
			}                                                                                            \
			for (size_t i = BPP; i < n; i += BPP) {                                                      \
				_Pragma("GCC unroll 4") for (int k = 0; k < BPP; k++) {                              \
					a[k] = (uint8_t)(cur[i + k] + ((a[k] + prev[i + k]) >> 1));                  \
					cur[i + k] = (uint8_t)a[k];                                                  \
				}                                                                                    \
			}                                                                                            \
			return 1;                                                                                    \
		case 4:                                                                                              \
			_Pragma("GCC unroll 4") for (int k = 0; k < BPP; k++) {                                      \
				c[k] = prev[k];                                                                      \
				a[k] = (uint8_t)(cur[k] + c[k]);                                                     \
				cur[k] = (uint8_t)a[k];                                                              \
			}                                                                                            \
			for (size_t i = BPP; i < n; i += BPP) {                                                      \
				_Pragma("GCC unroll 4") for (int k = 0; k < BPP; k++) {                              \
					unsigned b = prev[i + k];                                                    \
					a[k] = (uint8_t)(cur[i + k] + tc_paeth((int)a[k], (int)b, (int)c[k]));       \
					cur[i + k] = (uint8_t)a[k];                                                  \
					c[k] = b;                                                                    \
				}                                                                                    \
			}                                                                                            \
			return 1;                                                                                    \
		}                                                                                                    \
		return 0;                                                                                            \
	}
TC_UNFILTER(1)
TC_UNFILTER(2)
TC_UNFILTER(3)
TC_UNFILTER(4)

static inline uint8_t tc_white(unsigned c, unsigned a) {
	return (uint8_t)((c * a + (0xff - a) * 0xff + 127) / 0xff);
}

/* Walks the chunks from the first IDAT to IEND: the IDAT chunks' data (their CRCs checked) go to
 * *in; a chunk running past the end of data is a truncation. */
static int tc_png_chunks(const uint8_t *data, size_t len, size_t pos, struct tc_idat *in, int zlib_only, char *msg) {
	int cap = 0, idat = 1;
	in->count = 0;
	in->total = 0;
	for (;;) {
		if (len - pos < 12) {
			snprintf(msg, TC_MSG, "unexpected EOF");
			return TC_EOF;
		}
		uint32_t n = tc_be32(data + pos);
		const uint8_t *type = data + pos + 4;
		if (n > 0x7fffffff) {
			snprintf(msg, TC_MSG, "%.4s: invalid chunk length", (const char *)type);
			return TC_ERR;
		}
		if (len - pos - 12 < n) {
			snprintf(msg, TC_MSG, "unexpected EOF");
			return TC_EOF;
		}
		if (memcmp(type, "IEND", 4) == 0) {
			return TC_OK;
		}
		if (memcmp(type, "IDAT", 4) != 0) {
			idat = 0; /* IDAT chunks after another chunk are ignored, as libpng does */
		} else if (idat) {
			if (tc_crc32(type, (size_t)n + 4, zlib_only) != tc_be32(type + 4 + n)) {
				snprintf(msg, TC_MSG, "IDAT: CRC error");
				return TC_ERR;
			}
			if (in->count == cap) {
				cap = cap ? 2 * cap : 16;
				const uint8_t **np = realloc(in->p, (size_t)cap * sizeof *np);
				if (np != NULL) {
					in->p = np;
				}
				size_t *nn = realloc(in->n, (size_t)cap * sizeof *nn);
				if (nn != NULL) {
					in->n = nn;
				}
				if (np == NULL || nn == NULL) {
					snprintf(msg, TC_MSG, "out of memory");
					return TC_ERR;
				}
			}
			in->p[in->count] = type + 4;
			in->n[in->count] = n;
			in->count++;
			in->total += n;
		}
		pos += 12 + (size_t)n;
	}
}

/* Decodes an 8-bit, non-interlaced PNG whose header (already read by tc_png_header) gave width,
 * height, its colour type and tRNS; zlib_only (for tests) leaves libdeflate unused. filt holds height rows of 1 + width·channels bytes (the
 * filter byte, then the samples): the image is inflated and unfiltered there. The pixels end up
 * as follows (the caller computes the same layout):
 *   - grey without tRNS: grey, in filt (row y at 1 + y·(rowbytes+1));
 *   - RGB, and RGBA composited onto white: RGB, in place in filt (same rows);
 *   - grey with tRNS, grey+alpha and palette: RGB in out, rows of 3·width bytes. */
int tc_png_decode8(const uint8_t *data, size_t len, int width, int height, uint8_t *filt, size_t filtlen,
                   uint8_t *out, size_t outlen, int zlib_only, char *msg) {
	struct tc_png_src src = {data, len, 0, 0, msg};
	png_infop pi = NULL;
	msg[0] = 0;
	tc_have_libdeflate();
	png_structp p = tc_png_open(&src, &pi);
	if (p == NULL) {
		snprintf(msg, TC_MSG, "out of memory");
		return TC_ERR;
	}
	/* Read with libpng: everything up to the first IDAT chunk's data. */
	int ct, trns;
	uint8_t lut[256][3];
	unsigned key[3] = {0x100, 0x100, 0x100}; /* a tRNS colour key; 0x100 matches no sample */
	if (setjmp(png_jmpbuf(p))) {
		png_destroy_read_struct(&p, &pi, NULL);
		return src.eof ? TC_EOF : TC_ERR;
	}
	png_set_read_fn(p, &src, tc_png_read);
	png_set_keep_unknown_chunks(p, PNG_HANDLE_CHUNK_NEVER, tc_png_ignored, (int)(sizeof tc_png_ignored / 5));
	png_set_user_limits(p, 0x7fffffff, 0x7fffffff);
	png_read_info(p, pi);
	ct = png_get_color_type(p, pi);
	trns = png_get_valid(p, pi, PNG_INFO_tRNS) != 0;
	if ((int)png_get_image_width(p, pi) != width || (int)png_get_image_height(p, pi) != height ||
	    png_get_bit_depth(p, pi) != 8 || png_get_interlace_type(p, pi) != PNG_INTERLACE_NONE) {
		png_error(p, "header changed between reads");
	}
	if (ct == PNG_COLOR_TYPE_PALETTE) {
		png_colorp pal = NULL;
		int npal = 0;
		png_bytep alpha = NULL;
		int nalpha = 0;
		png_get_PLTE(p, pi, &pal, &npal);
		if (trns) {
			png_get_tRNS(p, pi, &alpha, &nalpha, NULL);
		}
		memset(lut, 0, sizeof lut); /* indices beyond the palette: opaque black, as libpng gives */
		for (int i = 0; i < npal && i < 256; i++) {
			unsigned a = alpha != NULL && i < nalpha ? alpha[i] : 0xff;
			lut[i][0] = tc_white(pal[i].red, a);
			lut[i][1] = tc_white(pal[i].green, a);
			lut[i][2] = tc_white(pal[i].blue, a);
		}
	} else if (trns) {
		png_color_16p tc = NULL;
		png_get_tRNS(p, pi, NULL, NULL, &tc);
		if (tc != NULL) { /* libpng compares the low byte for 8-bit samples */
			if (ct == PNG_COLOR_TYPE_GRAY) {
				key[0] = key[1] = key[2] = tc->gray & 0xff;
			} else {
				key[0] = tc->red & 0xff;
				key[1] = tc->green & 0xff;
				key[2] = tc->blue & 0xff;
			}
		}
	}
	/* png_read_info stops after the first IDAT chunk's length and type. */
	size_t pos = src.pos;
	png_destroy_read_struct(&p, &pi, NULL);
	if (pos < 8 || pos > len || memcmp(data + pos - 4, "IDAT", 4) != 0) {
		snprintf(msg, TC_MSG, "no image data");
		return TC_ERR;
	}

	int ch = ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_PALETTE ? 1
	         : ct == PNG_COLOR_TYPE_GRAY_ALPHA                          ? 2
	         : ct == PNG_COLOR_TYPE_RGB                                 ? 3
	                                                                    : 4;
	size_t rb = (size_t)width * (size_t)ch, stride = rb + 1;
	int toout = ct == PNG_COLOR_TYPE_PALETTE || ct == PNG_COLOR_TYPE_GRAY_ALPHA || (ct == PNG_COLOR_TYPE_GRAY && trns);
	if (filtlen != stride * (size_t)height || (toout && outlen != (size_t)width * 3 * (size_t)height)) {
		snprintf(msg, TC_MSG, "unexpected buffer sizes");
		return TC_ERR;
	}

	struct tc_idat in = {NULL, NULL, 0, 0};
	int rc = tc_png_chunks(data, len, pos - 8, &in, zlib_only, msg);
	if (rc == TC_OK) {
		rc = -1;
		if (tc_ld.alloc != NULL && !zlib_only) {
			rc = tc_inflate_ld(&in, filt, filtlen, msg);
		}
		if (rc == -1) {
			msg[0] = 0;
			rc = tc_inflate_zlib(&in, filt, filtlen, msg);
		}
	}
	free(in.p);
	free(in.n);
	if (rc != TC_OK) {
		return rc;
	}

	/* Unfilter row y, then write the pixels of row y (to out) or of row y-1 (in place: row y's
	 * unfiltering needs row y-1 as it was). */
	int inplace = !toout && (ct == PNG_COLOR_TYPE_RGB_ALPHA || (ct == PNG_COLOR_TYPE_RGB && trns));
	for (int y = 0; y <= height; y++) {
		if (y < height) {
			uint8_t *row = filt + (size_t)y * stride;
			const uint8_t *prev = y > 0 ? row - stride + 1 : NULL;
			int ok;
			switch (ch) {
			case 1:
				ok = tc_unfilter1(row[0], row + 1, prev, rb);
				break;
			case 2:
				ok = tc_unfilter2(row[0], row + 1, prev, rb);
				break;
			case 3:
				ok = tc_unfilter3(row[0], row + 1, prev, rb);
				break;
			default:
				ok = tc_unfilter4(row[0], row + 1, prev, rb);
			}
			if (!ok) {
				snprintf(msg, TC_MSG, "bad adaptive filter value");
				return TC_ERR;
			}
			if (toout) {
				const uint8_t *s = row + 1;
				uint8_t *o = out + (size_t)y * 3 * (size_t)width;
				if (ct == PNG_COLOR_TYPE_PALETTE) {
					for (int x = 0; x < width; x++, o += 3) {
						const uint8_t *c = lut[s[x]];
						o[0] = c[0];
						o[1] = c[1];
						o[2] = c[2];
					}
				} else if (ct == PNG_COLOR_TYPE_GRAY_ALPHA) {
					for (int x = 0; x < width; x++, o += 3, s += 2) {
						uint8_t v = s[1] == 0xff ? s[0] : tc_white(s[0], s[1]);
						o[0] = o[1] = o[2] = v;
					}
				} else {
					for (int x = 0; x < width; x++, o += 3) {
						uint8_t v = s[x] == key[0] ? 0xff : s[x];
						o[0] = o[1] = o[2] = v;
					}
				}
			}
		}
		if (inplace && y > 0) {
			uint8_t *r = filt + (size_t)(y - 1) * stride + 1;
			if (ct == PNG_COLOR_TYPE_RGB_ALPHA) {
				uint8_t *o = r;
				for (int x = 0; x < width; x++, r += 4, o += 3) {
					unsigned cr = r[0], cg = r[1], cb = r[2], a = r[3];
					if (a != 0xff) {
						cr = tc_white(cr, a);
						cg = tc_white(cg, a);
						cb = tc_white(cb, a);
					}
					o[0] = (uint8_t)cr;
					o[1] = (uint8_t)cg;
					o[2] = (uint8_t)cb;
				}
			} else {
				for (int x = 0; x < width; x++, r += 3) {
					if (r[0] == key[0] && r[1] == key[1] && r[2] == key[2]) {
						r[0] = r[1] = r[2] = 0xff;
					}
				}
			}
		}
	}
	return TC_OK;
}
