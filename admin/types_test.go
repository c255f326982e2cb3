package admin_test

import (
	"testing"

	"github.com/troupe-dev/troupe/admin"
)

func TestRebase(t *testing.T) {
	n := admin.Node{Path: "/", Children: []admin.Node{{Path: "/stage:s", Children: []admin.Node{{Path: "/stage:s/worker:1"}}}}}
	r := admin.Rebase(n, "/job:3")
	if r.Path != "/job:3" || r.Children[0].Path != "/job:3/stage:s" || r.Children[0].Children[0].Path != "/job:3/stage:s/worker:1" {
		t.Fatalf("%+v", r)
	}
	if n.Children[0].Path != "/stage:s" {
		t.Fatal("Rebase changed its argument")
	}
	if p := admin.RebasePath("/job:3/", "/sink"); p != "/job:3/sink" {
		t.Fatal(p)
	}
	if p := admin.RebasePath("", "/"); p != "/" {
		t.Fatal(p)
	}
}
