package cluster_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe/internal/proctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// No troupe process (node, run, plugin guardian) and no plugin may outlive the tests.
	for _, p := range []string{troupeBin, pluginBin} {
		if p == "" {
			continue
		}
		deadline := time.Now().Add(proctest.Deadline)
		for len(proctest.Running(p)) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if left := proctest.Running(p); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "processes of %s left behind: %v\n", p, left)
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			code = 1
		}
	}
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const token = "s3cret-cluster-token"

var (
	buildOnce sync.Once
	troupeBin string
	buildDir  string
)

// binary builds the troupe command once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the troupe command")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "troupe-cluster-test")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
		troupeBin = proctest.Build(t, dir, "troupe", "github.com/troupe-dev/troupe/cmd/troupe")
	})
	if troupeBin == "" {
		t.Fatal("the troupe command did not build")
	}
	return troupeBin
}

// node is a `troupe node` process.
type node struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNode starts a node on a free loopback port with tok, and waits for its address. It is
// killed (and reaped) when the test ends, whatever state it is in.
func startNode(t *testing.T, bin, tok string) *node {
	t.Helper()
	return startNodeOn(t, bin, tok, "127.0.0.1:0")
}

// startNodeOn starts a node listening on addr, with env added to its environment.
func startNodeOn(t *testing.T, bin, tok, addr string, env ...string) *node {
	t.Helper()
	cmd := exec.Command(bin, "node", "--listen", addr, "--token", tok)
	cmd.Env = append(os.Environ(), env...)
	return startCmd(t, cmd)
}

// startCmd starts a node's command and waits for its address.
func startCmd(t *testing.T, cmd *exec.Cmd) *node {
	t.Helper()
	n := &node{cmd: cmd, log: &syncBuffer{}}
	cmd.Stderr = n.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("node %s log:\n%s", n.addr, n.log.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		const prefix = "troupe node listening on "
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("node said %q; log:\n%s", l, n.log.String())
		}
		n.addr = strings.TrimPrefix(l, prefix)
	case <-time.After(proctest.Deadline):
		t.Fatalf("node did not start within %s; log:\n%s", proctest.Deadline, n.log.String())
	}
	return n
}

// waitFor polls cond until it holds, failing the test after the package deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(proctest.Deadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", proctest.Deadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeSpec(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func nodeList(ns ...*node) string {
	addrs := make([]string, len(ns))
	for i, n := range ns {
		addrs[i] = n.addr
	}
	return "[" + strings.Join(addrs, ", ") + "]"
}

// recordLine is the i-th input line; the stage upper-cases it. Every line has the same length,
// so the output file's size counts the records written.
func recordLine(i int) string { return fmt.Sprintf("r%09d", i) }

const lineLen = 11 // recordLine and its newline

// checkExactlyOnce checks that out holds the upper-cased input lines 0..n-1, each exactly once.
func checkExactlyOnce(t *testing.T, out string, n int) {
	t.Helper()
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, n)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(data) == 0 {
		lines = nil
	}
	dups, bad := 0, 0
	for _, l := range lines {
		var i int
		if _, err := fmt.Sscanf(string(l), "R%09d", &i); err != nil || i < 0 || i >= n || len(l) != lineLen-1 {
			bad++
			continue
		}
		if seen[i] {
			dups++
		}
		seen[i] = true
	}
	missing := 0
	for _, s := range seen {
		if !s {
			missing++
		}
	}
	if dups+bad+missing > 0 {
		t.Fatalf("sink: %d lines for %d records: %d duplicated, %d missing, %d malformed", len(lines), n, dups, missing, bad)
	}
}

var (
	pluginOnce sync.Once
	pluginBin  string
	pluginSum  string
)

// upperPlugin builds examples/plugins/upper once and returns its path and sha256.
func upperPlugin(t *testing.T) (string, string) {
	t.Helper()
	binary(t)
	pluginOnce.Do(func() {
		p := proctest.Build(t, buildDir, "upper-plugin", "github.com/troupe-dev/troupe/examples/plugins/upper")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		pluginBin, pluginSum = p, fmt.Sprintf("%x", sha256.Sum256(data))
	})
	if pluginBin == "" {
		t.Fatal("the plugin did not build")
	}
	return pluginBin, pluginSum
}

// TestClusterSurvivesKilledAndStoppedNodes runs a plugin stage placed on three nodes over 1 M
// records; one node is SIGKILLed and another SIGSTOPped mid-run. The run must complete with
// every record exactly once at the sink, and no plugin process may outlive the nodes.
func TestClusterSurvivesKilledAndStoppedNodes(t *testing.T) {
	plugin, sum := upperPlugin(t)
	bin := binary(t)
	// Cleanups run last first: these run after the nodes are killed.
	t.Cleanup(func() { proctest.WaitNoneRunning(t, plugin) })
	t.Cleanup(func() { proctest.WaitNoneRunning(t, bin) })
	nodes := []*node{startNode(t, bin, token), startNode(t, bin, token), startNode(t, bin, token)}
	survive(t, 1_000_000, fmt.Sprintf("plugin: {cmd: [%s], sha256: %s}", plugin, sum), nodes, "")
}

// TestClusterBuiltinSurvives is the same with a builtin stage run in the nodes' processes.
func TestClusterBuiltinSurvives(t *testing.T) {
	bin := binary(t)
	nodes := []*node{startNode(t, bin, token), startNode(t, bin, token), startNode(t, bin, token)}
	survive(t, 300_000, "builtin: upper", nodes, "")
}

// survive runs a stage of kind ("builtin: upper") placed on three nodes over n records,
// SIGKILLs nodes[0] and SIGSTOPs nodes[1] mid-run, and checks the run's end and its output.
// extra adds keys to the spec's cluster section.
func survive(t *testing.T, n int, kind string, nodes []*node, extra string) {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.fifo")
	if err := syscall.Mkfifo(in, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.txt")
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: e2e
cluster:
  nodes: %s
  heartbeat: 1s
  %s
source:
  lines: {path: %s}
stages:
  - name: up
    %s
    placement: cluster
    workers: 2
sink:
  lines: {path: %s}
`, nodeList(nodes...), extra, in, kind, out))

	run := exec.Command(bin, "run", "--progress", "none", "--log-level", "info", specPath)
	run.Env = append(os.Environ(), "TROUPE_CLUSTER_TOKEN="+token)
	stderr := &syncBuffer{}
	run.Stderr, run.Stdout = stderr, io.Discard
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	t.Cleanup(func() {
		_ = run.Process.Kill()
		<-exited
	})

	// The source is a pipe: the first part of the input, then the failures, then the rest, so
	// that the failures happen while records are in flight and before the input ends.
	resume := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(in, os.O_WRONLY, 0)
		if err != nil {
			writerDone <- err
			return
		}
		defer f.Close()
		w := bufio.NewWriterSize(f, 1<<16)
		for i := range n {
			if i == n/2 {
				if err := w.Flush(); err != nil {
					writerDone <- err
					return
				}
				<-resume
			}
			fmt.Fprintln(w, recordLine(i))
		}
		writerDone <- w.Flush()
	}()
	written := func() int64 {
		st, err := os.Stat(out)
		if err != nil {
			return 0
		}
		return st.Size() / lineLen
	}
	waitFor(t, "a tenth of the records at the sink", func() bool { return written() >= int64(n/10) })
	if err := nodes[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := written()
	waitFor(t, "more records at the sink after the SIGKILL", func() bool { return written() >= killedAt+int64(n/10) })
	if err := nodes[1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nodes[1].cmd.Process.Signal(syscall.SIGCONT) })
	close(resume)

	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
	case <-time.After(3 * proctest.Deadline):
		t.Fatalf("run did not end within %s\n%s", 3*proctest.Deadline, stderr.String())
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, out, n)
	log := stderr.String()
	if !strings.Contains(log, nodes[1].addr+" lost: no heartbeat") {
		t.Errorf("the SIGSTOPped node %s was not reported lost by heartbeat:\n%s", nodes[1].addr, lastLines(log, 40))
	}
	t.Logf("coordinator:\n%s", lastLines(log, 8))
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// runSpec runs `troupe run` on spec to its end and returns its exit code and stderr; an error
// when it could not run or did not end within the deadline (then it is killed).
func runSpec(bin, specPath string, env ...string) (int, string, error) {
	run := exec.Command(bin, "run", "--progress", "none", "--log-level", "info", specPath)
	run.Env = append(append(os.Environ(), "TROUPE_CLUSTER_TOKEN="+token), env...)
	stderr := &syncBuffer{}
	run.Stderr, run.Stdout = stderr, io.Discard
	if err := run.Start(); err != nil {
		return -1, "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			return 0, stderr.String(), nil
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stderr.String(), nil
		}
		return -1, stderr.String(), err
	case <-time.After(3 * proctest.Deadline):
		_ = run.Process.Kill()
		<-exited
		return -1, stderr.String(), fmt.Errorf("run did not end within %s", 3*proctest.Deadline)
	}
}

// mustRun is runSpec from the test's goroutine.
func mustRun(t *testing.T, bin, specPath string, env ...string) (int, string) {
	t.Helper()
	code, log, err := runSpec(bin, specPath, env...)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	return code, log
}

func writeLines(t *testing.T, path string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		b.WriteString(recordLine(i))
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a loopback address nothing listens on (it was free a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestWrongTokenRefused: a node whose token is not the run's refuses it and logs so; the run
// reports the node unreachable and aborts (exit 1).
func TestWrongTokenRefused(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	nd := startNode(t, bin, "not-the-cluster-token")
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	writeLines(t, in, 1000)
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: wrongtoken
cluster: {nodes: [%s], heartbeat: 500ms}
source: {lines: {path: %s}}
stages: [{name: up, builtin: upper, placement: cluster, workers: 1}]
sink: {lines: {path: %s}}
`, nd.addr, in, out))
	code, log := mustRun(t, bin, specPath)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, log)
	}
	if !strings.Contains(log, "node "+nd.addr+" unreachable") {
		t.Errorf("the run does not report node %s unreachable:\n%s", nd.addr, lastLines(log, 20))
	}
	waitFor(t, "the node to log the refusal", func() bool {
		return strings.Contains(nd.log.String(), "refused a peer: wrong or missing cluster token")
	})
}

// TestFallbackLocal: with fallback: local, a stage whose nodes are all unreachable runs its
// workers locally and the run completes.
func TestFallbackLocal(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	const n = 20000
	writeLines(t, in, n)
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: fallback
cluster: {nodes: [%s], heartbeat: 300ms, fallback: local}
source: {lines: {path: %s}}
stages: [{name: up, builtin: upper, placement: cluster, workers: 2}]
sink: {lines: {path: %s}}
`, freeAddr(t), in, out))
	code, log := mustRun(t, bin, specPath)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, log)
	}
	checkExactlyOnce(t, out, n)
	if !strings.Contains(log, "no node reachable; worker runs locally") {
		t.Errorf("no fallback logged:\n%s", lastLines(log, 20))
	}
}

// TestAllNodesGoneAborts: without a fallback, a stage whose nodes are all unreachable aborts
// the run with the reason.
func TestAllNodesGoneAborts(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	writeLines(t, in, 100)
	addr := freeAddr(t)
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: gone
cluster: {nodes: [%s], heartbeat: 300ms}
source: {lines: {path: %s}}
stages: [{name: up, builtin: upper, placement: cluster, workers: 1}]
sink: {lines: {path: %s}}
`, addr, in, out))
	code, log := mustRun(t, bin, specPath)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, log)
	}
	if !strings.Contains(log, "every node of the cluster is unreachable") {
		t.Errorf("no clear reason:\n%s", lastLines(log, 20))
	}
}

// TestNodeComesBack: a node that is down when the run starts gets workers once it is up: the
// workers placed away from it move back.
func TestNodeComesBack(t *testing.T) {
	bin := binary(t)
	b := startNode(t, bin, token)
	comesBack(t, bin, func(a string) string { return fmt.Sprintf("nodes: [%s, %s], heartbeat: 300ms", a, b.addr) })
}

// TestFallbackThenNodeComesUp: a stage that fell back to local workers (no node reachable)
// moves its workers to the node once it is up.
func TestFallbackThenNodeComesUp(t *testing.T) {
	bin := binary(t)
	comesBack(t, bin, func(a string) string { return fmt.Sprintf("nodes: [%s], heartbeat: 300ms, fallback: local", a) })
}

// comesBack runs a stage on a cluster whose node A (cluster(A) gives the cluster section's
// keys) is down at the start, starts A mid-run, and checks that A gets workers and that the
// run ends with every record exactly once.
func comesBack(t *testing.T, bin string, cluster func(a string) string) {
	t.Helper()
	const n = 200_000
	dir := t.TempDir()
	aAddr := freeAddr(t)
	in := filepath.Join(dir, "in.fifo")
	if err := syscall.Mkfifo(in, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.txt")
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: comeback
cluster: {%s}
source: {lines: {path: %s}}
stages: [{name: up, builtin: upper, placement: cluster, workers: 2}]
sink: {lines: {path: %s}}
`, cluster(aAddr), in, out))
	resume := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(in, os.O_WRONLY, 0)
		if err != nil {
			writerDone <- err
			return
		}
		defer f.Close()
		w := bufio.NewWriterSize(f, 1<<16)
		for i := range n {
			if i == n/2 {
				if err := w.Flush(); err != nil {
					writerDone <- err
					return
				}
				<-resume
			}
			fmt.Fprintln(w, recordLine(i))
		}
		writerDone <- w.Flush()
	}()
	type result struct {
		code int
		log  string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, log, err := runSpec(bin, specPath)
		done <- result{code, log, err}
	}()
	written := func() int64 {
		st, err := os.Stat(out)
		if err != nil {
			return 0
		}
		return st.Size() / lineLen
	}
	waitFor(t, "records at the sink without node A", func() bool { return written() >= n/10 })
	a := startNodeOn(t, bin, token, aAddr)
	waitFor(t, "workers on node A once it is up", func() bool { return strings.Contains(a.log.String(), "worker started") })
	close(resume)
	r := <-done
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.log)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, out, n)
}

// TestPluginChecksumOnNode: the node checks the plugin program's sha256 before starting it.
// The spec names the program without a slash, so each process finds it in its own $PATH: the
// coordinator's copy is the plugin, the node's is another program; the node refuses it and the
// run fails at once, naming both sums.
func TestPluginChecksumOnNode(t *testing.T) {
	bin := binary(t)
	plugin, sum := upperPlugin(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	for _, d := range []string{good, bad} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(plugin, filepath.Join(good, "upper-plugin")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "upper-plugin"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	nd := startNodeOn(t, bin, token, "127.0.0.1:0", "PATH="+bad+":"+os.Getenv("PATH"))
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	writeLines(t, in, 100)
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: checksum
cluster: {nodes: [%s], heartbeat: 2s}
source: {lines: {path: %s}}
stages: [{name: up, plugin: {cmd: [upper-plugin], sha256: %s}, placement: cluster, workers: 1}]
sink: {lines: {path: %s}}
`, nd.addr, in, sum, out))
	code, log := mustRun(t, bin, specPath, "PATH="+good+":"+os.Getenv("PATH"))
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, log)
	}
	if !strings.Contains(log, "the spec requires "+sum+": refusing to start it") || !strings.Contains(log, "node "+nd.addr) {
		t.Errorf("the run does not report the node's refusal:\n%s", lastLines(log, 20))
	}
}

// TestClusterNetns is the kill/stop test with each node in a network namespace of its own,
// joined to this one by a veth pair: addresses other than 127.0.0.1, both ways (the nodes answer
// the coordinator at its advertised address).
func TestClusterNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command (iproute2): cannot make network namespaces")
	}
	bin := binary(t)
	ip := func(args ...string) error {
		out, err := exec.Command(ipCmd, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	var nodes []*node
	var hostIP string
	for i := range 3 {
		ns := fmt.Sprintf("troupe-t%d-%d", os.Getpid(), i)
		host, peer := fmt.Sprintf("trh%d%d", os.Getpid()%100000, i), fmt.Sprintf("trp%d%d", os.Getpid()%100000, i)
		octet := (os.Getpid()*3 + i) % 250
		hip, nip := fmt.Sprintf("10.213.%d.1", octet), fmt.Sprintf("10.213.%d.2", octet)
		if err := ip("netns", "add", ns); err != nil {
			t.Skipf("cannot make a network namespace here: %v", err)
		}
		t.Cleanup(func() {
			_ = ip("netns", "del", ns) // after the nodes are killed (cleanups run last first)
			_ = ip("link", "del", host)
		})
		for _, args := range [][]string{
			{"link", "add", host, "type", "veth", "peer", "name", peer},
			{"link", "set", peer, "netns", ns},
			{"addr", "add", hip + "/24", "dev", host},
			{"link", "set", host, "up"},
			{"-n", ns, "addr", "add", nip + "/24", "dev", peer},
			{"-n", ns, "link", "set", peer, "up"},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", ns, "route", "add", "default", "via", hip},
		} {
			if err := ip(args...); err != nil {
				t.Skipf("cannot set up the veth pair: %v", err)
			}
		}
		if hostIP == "" {
			hostIP = hip
		}
		nodes = append(nodes, startNodeIn(t, ipCmd, ns, bin, token, nip+":7946"))
	}
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	survive(t, 300_000, "builtin: upper", nodes, fmt.Sprintf("listen: 0.0.0.0:%s\n  advertise: %s:%s", port, hostIP, port))
}

// startNodeIn starts a node in network namespace ns, listening on addr.
func startNodeIn(t *testing.T, ipCmd, ns, bin, tok, addr string) *node {
	t.Helper()
	// ip netns exec execs the node: the pid is the node's, so signals reach it.
	return startCmd(t, exec.Command(ipCmd, "netns", "exec", ns, bin, "node", "--listen", addr, "--token", tok))
}

// TestLargeRecords: records larger than gRPC's default message limit (4 MiB) travel too.
func TestLargeRecords(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	nd := startNode(t, bin, token)
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: large
cluster: {nodes: [%s], heartbeat: 5s}
source: {range: {count: 12, size: 6MiB}}
stages: [{name: up, builtin: upper, placement: cluster, workers: 2}]
sink: {discard: {}}
`, nd.addr))
	code, log := mustRun(t, bin, specPath)
	if code != 0 || !strings.Contains(log, "total: 12 in, 12 out") {
		t.Fatalf("exit %d\n%s", code, lastLines(log, 20))
	}
}

// writeCerts writes a CA and a certificate it signs for 127.0.0.1 (server and client use) as
// PEM files in dir: ca.pem, cert.pem, key.pem.
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "troupe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "troupe node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{
		"ca.pem":   {Type: "CERTIFICATE", Bytes: caDER},
		"cert.pem": {Type: "CERTIFICATE", Bytes: leafDER},
		"key.pem":  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMutualTLS: with certificates on both sides the run completes; a coordinator without them
// cannot reach the node.
func TestMutualTLS(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	writeCerts(t, dir)
	cmd := exec.Command(bin, "node", "--listen", "127.0.0.1:0", "--token", token,
		"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"), "--tls-ca", filepath.Join(dir, "ca.pem"))
	nd := startCmd(t, cmd)
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	const n = 20000
	writeLines(t, in, n)
	spec := func(tls string) string {
		return writeSpec(t, dir, fmt.Sprintf(`name: tls
cluster: {nodes: [%s], heartbeat: 2s%s}
source: {lines: {path: %s}}
stages: [{name: up, builtin: upper, placement: cluster, workers: 2}]
sink: {lines: {path: %s}}
`, nd.addr, tls, in, out))
	}
	code, log := mustRun(t, bin, spec(", tls: {cert: cert.pem, key: key.pem, ca: ca.pem}"))
	if code != 0 {
		t.Fatalf("with TLS: exit %d\n%s", code, lastLines(log, 20))
	}
	checkExactlyOnce(t, out, n)
	code, log = mustRun(t, bin, spec(""))
	if code != 1 || !strings.Contains(log, "node "+nd.addr+" unreachable") {
		t.Fatalf("without TLS: exit %d, want 1 and the node unreachable\n%s", code, lastLines(log, 20))
	}
}

// TestObserverShowsNodes: the admin server's tree names the node each worker runs on.
func TestObserverShowsNodes(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	nodes := []*node{startNode(t, bin, token), startNode(t, bin, token)}
	in := filepath.Join(dir, "in.fifo")
	if err := syscall.Mkfifo(in, 0o600); err != nil {
		t.Fatal(err)
	}
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: observed
cluster: {nodes: %s, heartbeat: 2s}
source: {lines: {path: %s}}
stages: [{name: up, builtin: upper, placement: cluster, workers: 1}]
sink: {discard: {}}
`, nodeList(nodes...), in))
	adminAddr := freeAddr(t)
	run := exec.Command(bin, "run", "--progress", "none", "--admin", adminAddr, specPath)
	run.Env = append(os.Environ(), "TROUPE_CLUSTER_TOKEN="+token)
	stderr := &syncBuffer{}
	run.Stderr, run.Stdout = stderr, io.Discard
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	t.Cleanup(func() {
		_ = run.Process.Kill()
		<-exited
	})
	// The source stays open (the pipe's writer holds it) until the tree has been seen.
	w, err := os.OpenFile(in, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	type treeNode struct {
		Path     string     `json:"path"`
		NodeAddr string     `json:"node_addr"`
		Children []treeNode `json:"children"`
	}
	var seen map[string]bool
	waitFor(t, "the tree to show a worker on each node", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/api/tree")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var root treeNode
		if json.NewDecoder(resp.Body).Decode(&root) != nil {
			return false
		}
		seen = map[string]bool{}
		var walk func(n treeNode)
		walk = func(n treeNode) {
			if n.NodeAddr != "" {
				seen[n.NodeAddr] = true
			}
			for _, c := range n.Children {
				walk(c)
			}
		}
		walk(root)
		return seen[nodes[0].addr] && seen[nodes[1].addr]
	})
	fmt.Fprintln(w, "hello")
	w.Close()
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
	case <-time.After(proctest.Deadline):
		t.Fatalf("run did not end\n%s", stderr.String())
	}
}
