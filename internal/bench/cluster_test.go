package bench

import (
	"bytes"
	"context"
	"testing"
)

// TestClusterFigures runs the cluster rows at tiny sizes: two node children, a cluster stage,
// the per-message baseline and the local run; TestMain checks nothing is left behind.
func TestClusterFigures(t *testing.T) {
	h := &harness{sizes: tinySizes, log: &bytes.Buffer{}}
	figs := h.clusterFigures(context.Background())
	if len(figs) != 3 {
		t.Fatalf("%d figures, want 3", len(figs))
	}
	for _, f := range figs {
		if f.Error != "" {
			t.Errorf("%s: %s", f.Name, f.Error)
		} else if !(f.Troupe > 0) || !(f.Baseline > 0 || f.Name == "cluster-2node-64B") {
			t.Errorf("%s: troupe %v baseline %v", f.Name, f.Troupe, f.Baseline)
		}
	}
}
