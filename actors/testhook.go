package actors

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Test-only fault injection, for the tests that kill a real troupe process at a chosen point
// (cmd/troupe's journal tests). It is inert unless the environment variable TROUPE_TEST_HOOK is
// set, as "NAME:N": the N-th time the runtime passes the point NAME, it does what the point
// does there (see the callers of testHookHit), writes "troupe-test-hook: NAME" to standard
// error and stalls until it is killed. The points: journal-torn (half of a journal batch is
// written and synced), sink-flush (the sink has flushed a batch, which is not yet synced nor
// journalled). Nothing else reads the variable; production runs never set it.
var testHook = sync.OnceValues(func() (string, int) {
	v := os.Getenv("TROUPE_TEST_HOOK")
	name, n, ok := strings.Cut(v, ":")
	if !ok {
		return "", 0
	}
	k, err := strconv.Atoi(n)
	if err != nil || k <= 0 {
		return "", 0
	}
	return name, k
})

var (
	testHookMu     sync.Mutex
	testHookCounts = map[string]int{}
)

// testHookWanted says whether TROUPE_TEST_HOOK names the point.
func testHookWanted(name string) bool {
	n, _ := testHook()
	return n == name
}

// testHookHit counts a pass through the point and says whether this is the N-th.
func testHookHit(name string) bool {
	want, k := testHook()
	if want != name {
		return false
	}
	testHookMu.Lock()
	defer testHookMu.Unlock()
	testHookCounts[name]++
	return testHookCounts[name] == k
}

// testHookStall announces the point on standard error and waits to be killed.
func testHookStall(name string) {
	fmt.Fprintf(os.Stderr, "troupe-test-hook: %s\n", name)
	for {
		time.Sleep(time.Hour)
	}
}
