package imgconv

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe"
)

func TestStage(t *testing.T) {
	payload := encodePNG(t, gradient(40, 30))
	in := troupe.Record{
		Key:     "input/a.png",
		Payload: payload,
		Meta:    map[string]string{"path": "/data/input/a.png", "size": "1234"},
	}
	inMeta := maps.Clone(in.Meta)
	outs, err := Stage(Options{Quality: 80})(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 {
		t.Fatalf("%d outputs, want 1", len(outs))
	}
	out := outs[0]
	if out.Key != "input/a.png" {
		t.Errorf("key not copied: %v", out.Key)
	}
	wantMeta := map[string]string{
		"path": "/data/input/a.png", "size": "1234",
		MetaFormat: "png", MetaWidth: "40", MetaHeight: "30",
	}
	if !maps.Equal(out.Meta, wantMeta) {
		t.Errorf("meta = %v, want %v", out.Meta, wantMeta)
	}
	want, _, err := Convert(payload, Options{Quality: 80})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Payload, want) {
		t.Error("payload is not Convert's JPEG")
	}
	// The input is read-only: the runtime may send it again.
	if !maps.Equal(in.Meta, inMeta) || !bytes.Equal(in.Payload, payload) {
		t.Error("input record was modified")
	}
	out.Meta["x"] = "y"
	if _, ok := in.Meta["x"]; ok {
		t.Error("output shares the input's meta map")
	}
}

func TestStageErrorNamesKey(t *testing.T) {
	stage := Stage(Options{})
	tests := []struct {
		payload []byte
		kind    error
		want    string
	}{
		{nil, ErrNotImage, "decode input/a.png: not an image: empty input"},
		{pngWithHeader(50000, 50000), ErrTooLarge, "decode input/a.png: image 50000x50000 (2500.0 MP) exceeds max_pixels 100.0 MP"},
		{[]byte("\x89PNG\r\n\x1a\n"), ErrCorrupt, "decode input/a.png: truncated PNG: unexpected EOF"},
	}
	for _, tt := range tests {
		outs, err := stage(context.Background(), troupe.Record{Key: "input/a.png", Payload: tt.payload})
		if outs != nil || !errors.Is(err, tt.kind) || err.Error() != tt.want {
			t.Errorf("got %v, %v; want no outputs and %q", outs, err, tt.want)
		}
	}
}

func TestStageContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := troupe.Record{Key: "k", Payload: encodePNG(t, gradient(8, 8))}
	outs, err := Stage(Options{})(ctx, rec)
	if !errors.Is(err, context.Canceled) || outs != nil {
		t.Errorf("cancelled: got %v, %v; want context.Canceled", outs, err)
	}
}

func TestStageInvalidOptions(t *testing.T) {
	stage := Stage(Options{Quality: 500})
	_, err := stage(context.Background(), troupe.Record{Key: "k", Payload: encodePNG(t, gradient(8, 8))})
	if err == nil || !strings.Contains(err.Error(), "quality") {
		t.Errorf("err = %v, want an error about quality", err)
	}
}
