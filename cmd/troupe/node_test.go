package main

import (
	"strings"
	"testing"
)

// TestNodeRefusesToStartWithoutToken: a node without the cluster's token would accept anyone.
func TestNodeRefusesToStartWithoutToken(t *testing.T) {
	t.Setenv(nodeTokenEnv, "")
	code, _, stderr := cli(t, "", "node", "--listen", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(stderr, "no cluster token") {
		t.Fatalf("exit %d, stderr %q; want %d and the missing token", code, stderr, exitUsage)
	}
}

func TestNodeBadListenAddress(t *testing.T) {
	code, _, stderr := cli(t, "", "node", "--listen", "nonsense", "--token", "t")
	if code != exitAborted || !strings.Contains(stderr, "nonsense") {
		t.Fatalf("exit %d, stderr %q; want %d naming the address", code, stderr, exitAborted)
	}
}
