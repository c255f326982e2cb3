package imgconv

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
)

// gifDecode decodes the first frame of a GIF, as image/gif's Decode does: the same
// *image.Paletted (bounds, palette with the transparent entry, pixels) and, for damaged input,
// an error with the same words. It reads the file from memory and decompresses LZW codes
// straight into the frame's pixels, where image/gif reads through two io.Reader layers (a
// ByteReader interface call per byte, and a copy of every decoded byte): about twice as fast.
// TestGIFDecodeMatchesImageGIF and FuzzGIFDecode hold the two together.
func gifDecode(data []byte) (image.Image, error) {
	d := gifDecoder{r: gifReader{b: data}}
	return d.decode()
}

// gifReader reads a GIF from memory. Its errors are those image/gif's readByte and readFull
// give for a bytes.Reader: running out of input is io.ErrUnexpectedEOF.
type gifReader struct {
	b   []byte
	pos int
}

func (r *gifReader) readByte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, io.ErrUnexpectedEOF
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *gifReader) readFull(n int) ([]byte, error) {
	if len(r.b)-r.pos < n {
		r.pos = len(r.b)
		return nil, io.ErrUnexpectedEOF
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

// readBlock reads a data sub-block, returning its length (0 for the block terminator).
func (r *gifReader) readBlock() (int, error) {
	n, err := r.readByte()
	if n == 0 || err != nil {
		return 0, err
	}
	if _, err := r.readFull(int(n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

var (
	errGIFNotEnough = errors.New("gif: not enough image data")
	errGIFTooMuch   = errors.New("gif: too much image data")
	errGIFBadPixel  = errors.New("gif: invalid pixel value")
	errGIFLZWCode   = errors.New("lzw: invalid code")
)

type gifDecoder struct {
	r                   gifReader
	width, height       int
	imageFields         byte
	transparentIndex    byte
	hasTransparentIndex bool
	globalColorTable    color.Palette
}

func (d *gifDecoder) decode() (image.Image, error) {
	hdr, err := d.r.readFull(13)
	if err != nil {
		return nil, fmt.Errorf("gif: reading header: %v", err)
	}
	if v := string(hdr[:6]); v != "GIF87a" && v != "GIF89a" {
		return nil, fmt.Errorf("gif: can't recognize format %q", v)
	}
	d.width = int(hdr[6]) + int(hdr[7])<<8
	d.height = int(hdr[8]) + int(hdr[9])<<8
	if fields := hdr[10]; fields&0x80 != 0 {
		if d.globalColorTable, err = d.readColorTable(fields); err != nil {
			return nil, err
		}
	}
	for {
		c, err := d.r.readByte()
		if err != nil {
			return nil, fmt.Errorf("gif: reading frames: %v", err)
		}
		switch c {
		case 0x21: // extension
			if err := d.readExtension(); err != nil {
				return nil, err
			}
		case 0x2c: // image descriptor
			return d.readImageDescriptor()
		case 0x3b: // trailer
			return nil, errors.New("gif: missing image data")
		default:
			return nil, fmt.Errorf("gif: unknown block type: 0x%.2x", c)
		}
	}
}

func (d *gifDecoder) readColorTable(fields byte) (color.Palette, error) {
	n := 1 << (1 + uint(fields&7))
	b, err := d.r.readFull(3 * n)
	if err != nil {
		return nil, fmt.Errorf("gif: reading color table: %s", err)
	}
	p := make(color.Palette, n)
	for i := range p {
		p[i] = color.RGBA{b[3*i], b[3*i+1], b[3*i+2], 0xff}
	}
	return p, nil
}

func (d *gifDecoder) readExtension() error {
	ext, err := d.r.readByte()
	if err != nil {
		return fmt.Errorf("gif: reading extension: %v", err)
	}
	size := 0
	switch ext {
	case 0x01: // plain text
		size = 13
	case 0xf9: // graphic control
		return d.readGraphicControl()
	case 0xfe: // comment
	case 0xff: // application
		b, err := d.r.readByte()
		if err != nil {
			return fmt.Errorf("gif: reading extension: %v", err)
		}
		size = int(b)
	default:
		return fmt.Errorf("gif: unknown extension 0x%.2x", ext)
	}
	var body []byte
	if size > 0 {
		if body, err = d.r.readFull(size); err != nil {
			return fmt.Errorf("gif: reading extension: %v", err)
		}
	}
	if ext == 0xff && string(body) == "NETSCAPE2.0" {
		n, err := d.r.readBlock()
		if err != nil {
			return fmt.Errorf("gif: reading extension: %v", err)
		}
		if n == 0 {
			return nil
		}
	}
	for {
		n, err := d.r.readBlock()
		if err != nil {
			return fmt.Errorf("gif: reading extension: %v", err)
		}
		if n == 0 {
			return nil
		}
	}
}

func (d *gifDecoder) readGraphicControl() error {
	b, err := d.r.readFull(6)
	if err != nil {
		return fmt.Errorf("gif: can't read graphic control: %s", err)
	}
	if b[0] != 4 {
		return fmt.Errorf("gif: invalid graphic control extension block size: %d", b[0])
	}
	if b[1]&0x01 != 0 {
		d.transparentIndex = b[4]
		d.hasTransparentIndex = true
	}
	if b[5] != 0 {
		return fmt.Errorf("gif: invalid graphic control extension block terminator: %d", b[5])
	}
	return nil
}

func (d *gifDecoder) readImageDescriptor() (*image.Paletted, error) {
	b, err := d.r.readFull(9)
	if err != nil {
		return nil, fmt.Errorf("gif: can't read image descriptor: %s", err)
	}
	left, top := int(b[0])+int(b[1])<<8, int(b[2])+int(b[3])<<8
	width, height := int(b[4])+int(b[5])<<8, int(b[6])+int(b[7])<<8
	d.imageFields = b[8]
	if left+width > d.width || top+height > d.height {
		return nil, errors.New("gif: frame bounds larger than image bounds")
	}
	m := image.NewPaletted(image.Rect(left, top, left+width, top+height), nil)
	local := d.imageFields&0x80 != 0
	if local {
		if m.Palette, err = d.readColorTable(d.imageFields); err != nil {
			return nil, err
		}
	} else {
		if d.globalColorTable == nil {
			return nil, errors.New("gif: no color table")
		}
		m.Palette = d.globalColorTable
	}
	if d.hasTransparentIndex {
		if !local {
			m.Palette = append(color.Palette(nil), d.globalColorTable...)
		}
		if ti := int(d.transparentIndex); ti < len(m.Palette) {
			m.Palette[ti] = color.RGBA{}
		} else {
			// Out of range: the palette grows with transparent entries, as browsers do.
			p := make(color.Palette, ti+1)
			copy(p, m.Palette)
			for i := len(m.Palette); i < len(p); i++ {
				p[i] = color.RGBA{}
			}
			m.Palette = p
		}
	}
	litWidth, err := d.r.readByte()
	if err != nil {
		return nil, fmt.Errorf("gif: reading image data: %v", err)
	}
	if litWidth < 2 || litWidth > 8 {
		return nil, fmt.Errorf("gif: pixel size in decode out of range: %d", litWidth)
	}
	br := gifBlocks{r: &d.r}
	if err := lzwDecode(&br, uint(litWidth), m.Pix); err != nil {
		return nil, err
	}
	if err := br.close(); err == errGIFTooMuch {
		return nil, errGIFTooMuch
	} else if err != nil {
		return nil, fmt.Errorf("gif: reading image data: %v", err)
	}
	if len(m.Palette) < 256 {
		for _, p := range m.Pix {
			if int(p) >= len(m.Palette) {
				return nil, errGIFBadPixel
			}
		}
	}
	if d.imageFields&0x40 != 0 {
		gifUninterlace(m)
	}
	return m, nil
}

// gifBlocks reads the bytes of a sequence of data sub-blocks, as image/gif's blockReader: err
// is io.EOF once the block terminator is read, io.ErrUnexpectedEOF if the input ends first.
type gifBlocks struct {
	r    *gifReader
	blk  []byte // the rest of the current sub-block
	n    int    // the current sub-block's length
	err  error
	used bool // a sub-block was read since the last fill
}

func (b *gifBlocks) fill() {
	if b.err != nil {
		return
	}
	n, err := b.r.readByte()
	if err == nil && n == 0 {
		err = io.EOF
	}
	if err != nil {
		b.err = err
		return
	}
	s, err := b.r.readFull(int(n))
	if err != nil {
		b.err = err
		b.n = 0
		b.blk = nil
		return
	}
	b.blk, b.n = s, int(n)
}

// close is image/gif's blockReader.close: after the image data, at most one more sub-block of
// one byte, or the rest of the current one, may come before the block terminator.
func (b *gifBlocks) close() error {
	if b.err == io.EOF {
		return nil
	} else if b.err != nil {
		return b.err
	}
	if len(b.blk) == 0 {
		b.fill()
		if b.err == io.EOF {
			return nil
		} else if b.err != nil {
			return b.err
		} else if b.n > 1 {
			return errGIFTooMuch
		}
	}
	b.fill()
	if b.err == io.EOF {
		return nil
	} else if b.err != nil {
		return b.err
	}
	return errGIFTooMuch
}

// lzwDecode decodes GIF's variable-width LZW codes (LSB first) from br into pix, with the
// outcome image/gif gets from compress/lzw: pix filled, then the end code (or the end of the
// sub-blocks, or of the input) before any further byte; errGIFNotEnough if the codes end
// before pix is full; errGIFTooMuch if they give more; an invalid code is an error.
//
// compress/lzw keeps each code as a prefix code and a suffix byte and walks the chain backwards
// for every code it expands. Here a code is where its expansion already stands in pix, and how
// long it is: the entry a code defines is the previous code's output followed by the first byte
// of its own, which is where the previous output ends. Every code a valid stream (or an invalid
// one that compress/lzw accepts) refers to was defined since the last clear code, from output
// made since then, so both give the same bytes.
func lzwDecode(br *gifBlocks, litWidth uint, pix []byte) error {
	const (
		maxWidth    = 12
		invalidCode = 0xffff
	)
	var (
		offs [1 << maxWidth]int32  // where a code's expansion starts in pix
		lens [1 << maxWidth]uint16 // its length
	)
	clear := uint16(1) << litWidth
	eof := clear + 1
	width := litWidth + 1
	hi := eof
	overflow := uint16(1) << width
	last := uint16(invalidCode)
	lastOff, lastLen := 0, 0 // the previous code's expansion in pix
	var bits uint32
	var nBits uint
	o := 0
	var readErr error
	for {
		// Read a code of width bits.
		for nBits < width {
			if len(br.blk) == 0 {
				br.fill()
				if br.err != nil {
					readErr = br.err
					break
				}
			}
			bits |= uint32(br.blk[0]) << nBits
			br.blk = br.blk[1:]
			nBits += 8
		}
		if readErr != nil {
			// compress/lzw turns the end of its input into io.ErrUnexpectedEOF: image/gif
			// accepts it once pix is full.
			if o < len(pix) {
				return errGIFNotEnough
			}
			return nil
		}
		code := uint16(bits & (1<<width - 1))
		bits >>= width
		nBits -= width

		switch {
		case code < clear:
			if o >= len(pix) {
				return errGIFTooMuch
			}
			pix[o] = uint8(code)
			if last != invalidCode {
				offs[hi], lens[hi] = int32(lastOff), uint16(lastLen+1)
			}
			lastOff, lastLen = o, 1
			o++
		case code == clear:
			width = litWidth + 1
			hi = eof
			overflow = 1 << width
			last = invalidCode
			continue
		case code == eof:
			if o < len(pix) {
				return errGIFNotEnough
			}
			return nil
		case code <= hi:
			var from, n int
			if code == hi && last != invalidCode {
				// hi expands to the last expansion followed by its first byte.
				from, n = lastOff, lastLen+1
			} else {
				from, n = int(offs[code]), int(lens[code])
			}
			if n > len(pix)-o {
				return errGIFTooMuch
			}
			if code == hi && last != invalidCode {
				copy(pix[o:o+n-1], pix[from:from+n-1])
				pix[o+n-1] = pix[from]
			} else if n <= 8 {
				src, dst := pix[from:from+n], pix[o:o+n]
				for i := range dst {
					dst[i] = src[i]
				}
			} else {
				copy(pix[o:o+n], pix[from:from+n])
			}
			if last != invalidCode {
				offs[hi], lens[hi] = int32(lastOff), uint16(lastLen+1)
			}
			lastOff, lastLen = o, n
			o += n
		default:
			return fmt.Errorf("gif: reading image data: %v", errGIFLZWCode)
		}
		last, hi = code, hi+1
		if hi >= overflow {
			if width == maxWidth {
				last = invalidCode
				hi--
			} else {
				width++
				overflow = 1 << width
			}
		}
	}
}

// gifUninterlace puts the rows of an interlaced frame in order.
func gifUninterlace(m *image.Paletted) {
	dx, dy := m.Bounds().Dx(), m.Bounds().Dy()
	nPix := make([]uint8, dx*dy)
	offset := 0
	for _, pass := range [4]struct{ skip, start int }{{8, 0}, {8, 4}, {4, 2}, {2, 1}} {
		nOffset := pass.start * dx
		for y := pass.start; y < dy; y += pass.skip {
			copy(nPix[nOffset:nOffset+dx], m.Pix[offset:offset+dx])
			offset += dx
			nOffset += dx * pass.skip
		}
	}
	m.Pix = nPix
}
