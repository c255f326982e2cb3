package imgconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// The tests in this file hold the functions of codec_std.go to the contract stated there, so
// that a native variant replacing that file is held to it too.

func TestCodecConfigReadsHeaderOnly(t *testing.T) {
	bomb := pngWithHeader(50000, 50000) // 10 GB as RGBA; the file is ~130 bytes
	cfg, err := pngConfig(bomb)
	if err != nil || cfg.Width != 50000 || cfg.Height != 50000 {
		t.Fatalf("pngConfig = %dx%d, %v; want 50000x50000", cfg.Width, cfg.Height, err)
	}
	if n := allocatedBytes(10, func() { _, _ = pngConfig(bomb) }); n > 64<<10 {
		t.Errorf("pngConfig allocated %d bytes per call, want < 64 KiB: it must not touch the pixels", n)
	}

	// A JPEG cut right after its headers (at the end of the start-of-scan segment): the
	// dimensions are there, the entropy-coded pixels are not.
	full := encodeJPEG(t, picture(300, 200, 1))
	sos := bytes.Index(full, []byte{0xff, 0xda})
	if sos < 0 {
		t.Fatal("test input: no SOS marker")
	}
	head := full[:sos+2+int(binary.BigEndian.Uint16(full[sos+2:]))]
	cfg, err = jpegConfig(head)
	if err != nil || cfg.Width != 300 || cfg.Height != 200 {
		t.Fatalf("jpegConfig(header only) = %dx%d, %v; want 300x200", cfg.Width, cfg.Height, err)
	}
}

func TestCodecDecodeTruncated(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		decode func([]byte) (any, error)
	}{
		{"png", encodePNG(t, picture(64, 48, 2)), func(b []byte) (any, error) { return pngDecode(b) }},
		{"jpeg", encodeJPEG(t, picture(64, 48, 2)), func(b []byte) (any, error) { return jpegDecode(b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.decode(tt.data); err != nil {
				t.Fatalf("whole file: %v", err)
			}
			cut := tt.data[:len(tt.data)/2]
			_, err := tt.decode(cut)
			if err == nil {
				t.Fatal("half a file decoded without error")
			}
			// Convert classifies the decoder's error; truncation must be recognisable as such.
			if e := decodeErr(sniff(cut), cut, err); !errors.Is(e, ErrCorrupt) || !errors.Is(e, io.ErrUnexpectedEOF) {
				t.Errorf("decodeErr(%v) = %v, want ErrCorrupt and io.ErrUnexpectedEOF", err, e)
			}
		})
	}
}

func TestCodecEncodeJPEG(t *testing.T) {
	src := gradient(97, 61) // smooth, so that quality 95 is close; odd sizes catch edge errors
	sizes := map[int]int{}
	for _, q := range []int{1, 30, 95, 100} {
		out, err := jpegEncode(src, q)
		if err != nil {
			t.Fatalf("quality %d: %v", q, err)
		}
		sizes[q] = len(out)
		if !bytes.HasPrefix(out, []byte{0xff, 0xd8}) || !bytes.Contains(out, []byte{0xff, 0xc0}) || bytes.Contains(out, []byte{0xff, 0xc2}) {
			t.Errorf("quality %d: not a baseline JPEG (SOI, SOF0, no SOF2)", q)
		}
		m := decodeJPEG(t, out)
		if m.Bounds() != src.Bounds() {
			t.Fatalf("quality %d: decoded bounds %v, want %v", q, m.Bounds(), src.Bounds())
		}
		if q == 95 {
			if d := meanAbsDiff(src, m); d > 3 {
				t.Errorf("quality 95: mean difference %.2f per channel, want <= 3", d)
			}
		}
	}
	if !(sizes[1] < sizes[30] && sizes[30] < sizes[95] && sizes[95] < sizes[100]) {
		t.Errorf("sizes by quality = %v, want increasing", sizes)
	}
}
