package imgconv_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// A half-transparent PNG becomes an opaque JPEG: transparency is composited onto white.
func ExampleConvert() {
	m := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+3] = 255, 128 // red, half transparent
	}
	var in bytes.Buffer
	if err := png.Encode(&in, m); err != nil {
		panic(err)
	}

	out, info, err := imgconv.Convert(in.Bytes(), imgconv.Options{Quality: 95})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %dx%d\n", info.Format, info.Width, info.Height)

	j, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		panic(err)
	}
	c := color.RGBAModel.Convert(j.At(32, 24)).(color.RGBA)
	fmt.Println("pink:", c.R > 250 && c.G > 120 && c.G < 136 && c.B > 120 && c.B < 136)

	_, _, err = imgconv.Convert([]byte("<html>"), imgconv.Options{})
	fmt.Println(err)
	// Output:
	// png 64x48
	// pink: true
	// not an image: unknown format (starts with 3c 68 74 6d 6c 3e)
}

func ExampleParseOptions() {
	// As decoded from a pipeline's YAML: "options: {quality: 80, max_pixels: 50M}".
	o, err := imgconv.ParseOptions(map[string]any{"quality": 80, "max_pixels": "50M"})
	fmt.Printf("%+v %v\n", o, err)

	_, err = imgconv.ParseOptions(map[string]any{"quality": "high"})
	fmt.Println(err)
	// Output:
	// {Quality:80 MaxPixels:50000000} <nil>
	// imgconv: option "quality": want an integer, got string
}

func ExampleStage() {
	stage := imgconv.Stage(imgconv.DefaultOptions())
	_, err := stage(context.Background(), troupe.Record{Key: "input/broken.png", Payload: []byte("\x89PNG\r\n\x1a\n")})
	fmt.Println(err)
	// Output:
	// decode input/broken.png: truncated PNG: unexpected EOF
}
