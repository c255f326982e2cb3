package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/stages/imgconv"
)

// The real-photo figure finds JPEG and PNG files under its directory (recursively, nothing
// else), converts them with troupe and with Pillow, and reports both.
func TestPhotosFigure(t *testing.T) {
	photos := t.TempDir()
	sub := filepath.Join(photos, "Some", "contents", "images")
	paths, err := imgconv.Generate(sub, 6, 3) // JPEG, PNG, GIF, PNG, PNG, JPEG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(photos, "metadata.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	found, err := findPhotos(photos, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range paths {
		if !strings.HasSuffix(p, ".gif") {
			want = append(want, p)
		}
	}
	if strings.Join(found, ",") != strings.Join(want, ",") {
		t.Fatalf("findPhotos = %v, want the JPEG and PNG files %v", found, want)
	}
	if got, _ := findPhotos(photos, 2); len(got) != 2 {
		t.Fatalf("findPhotos with limit 2 found %d", len(got))
	}

	h := &harness{sizes: tinySizes, log: &strings.Builder{}, tmp: t.TempDir(), photoDir: photos}
	figs := h.photos(context.Background())
	if len(figs) != 1 || figs[0].Name != "image-photos-vs-python-pillow" {
		t.Fatalf("figures %+v", figs)
	}
	f := figs[0]
	switch {
	case f.Error != "":
		t.Fatalf("error: %s", f.Error)
	case f.Skipped != "":
		if !strings.Contains(f.Skipped, "python3-pil") {
			t.Fatalf("skipped for another reason than a missing Pillow: %s", f.Skipped)
		}
		t.Logf("skipped: %s", f.Skipped)
	default:
		if !(f.Troupe > 0 && f.Baseline > 0) || f.Met == nil || !strings.Contains(f.Note, "2 real photographs") ||
			!strings.Contains(f.Note, imgconv.Codec()) {
			t.Fatalf("figure %+v", f)
		}
	}
}

func TestPhotosAbsent(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		h := &harness{sizes: tinySizes, log: &strings.Builder{}, tmp: t.TempDir(), photoDir: dir}
		figs := h.photos(context.Background())
		if len(figs) != 1 || figs[0].Skipped == "" || !strings.Contains(figs[0].Skipped, "no JPEG or PNG photographs under "+dir) ||
			!strings.Contains(figs[0].Skipped, "--photos") {
			t.Fatalf("%s: figures %+v, want skipped saying where it looked and how to point it elsewhere", dir, figs)
		}
	}
}
