package spec

import (
	"strings"
	"testing"
)

func TestClusterKeys(t *testing.T) {
	const base = `source: {range: {count: 10}}
sink: {discard: {}}
`
	cases := []struct {
		name, src string
		want      []string // substrings of the error; none: the spec is valid
	}{
		{"valid", base + `cluster: {nodes: [127.0.0.1:7001, "node-b:7002"], heartbeat: 2s, fallback: local}
stages: [{name: up, builtin: upper, placement: cluster}]
`, nil},
		{"default placement is local", base + `stages: [{name: up, builtin: upper}]
`, nil},
		{"cluster stage without cluster", base + `stages: [{name: up, builtin: upper, placement: cluster}]
`, []string{"stages[0].placement", "no cluster section"}},
		{"reduce stage on the cluster", base + `cluster: {nodes: [127.0.0.1:7001]}
stages: [{name: c, builtin: count, placement: cluster}]
`, []string{"reduce stage", "runs locally only"}},
		{"bad placement", base + `stages: [{name: up, builtin: upper, placement: remote}]
`, []string{"placement"}},
		{"node without port", base + `cluster: {nodes: [127.0.0.1]}
`, []string{"cluster.nodes[0]", "host:port"}},
		{"no nodes", base + `cluster: {nodes: []}
`, []string{"cluster.nodes"}},
		{"bad fallback", base + `cluster: {nodes: [127.0.0.1:7001], fallback: retry}
`, []string{"cluster.fallback"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse([]byte(c.src), "job.yaml")
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if s.Cluster != nil && s.Cluster.TokenEnv != "TROUPE_CLUSTER_TOKEN" {
					t.Errorf("token_env default %q", s.Cluster.TokenEnv)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it, want an error saying %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestClusterTokenMissing: building a cluster stage without its token fails, naming the
// variable.
func TestClusterTokenMissing(t *testing.T) {
	t.Setenv("TROUPE_TEST_NO_SUCH_TOKEN", "")
	s, err := Parse([]byte(`source: {range: {count: 10}}
sink: {discard: {}}
cluster: {nodes: [127.0.0.1:7001], token_env: TROUPE_TEST_NO_SUCH_TOKEN}
stages: [{name: up, builtin: upper, placement: cluster}]
`), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pipeline(BuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "TROUPE_TEST_NO_SUCH_TOKEN") {
		t.Fatalf("Pipeline: %v, want an error naming the token variable", err)
	}
}
