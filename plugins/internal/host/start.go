package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/troupe-dev/troupe/ipc"
)

// permanentError is a failed start that can never succeed however often it is retried: the
// program is missing, not executable, not the one the spec's sha256 names, or not a troupe
// plugin of this protocol. Its Permanent method tells the runtime (troupe.PermanentError) to fail
// the run at once instead of retrying; every other failed start (the process died before its
// handshake, the startup deadline passed, Setup refused the options) is retried under the
// stage's restart policy.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

func permanent(err error) error {
	var p *permanentError
	if err == nil || errors.As(err, &p) {
		return err
	}
	return &permanentError{err}
}

func permanentf(format string, args ...any) error { return permanent(fmt.Errorf(format, args...)) }

// IsPermanent says whether a start failed for good (see permanentError).
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// foreignCookie is what go-plugin's Serve prints (and exits 1) when the host did not set the
// magic cookie it expects: the program is a go-plugin plugin of another application.
const foreignCookie = "This binary is a plugin. These are not meant to be executed directly."

// startError explains a failed start, with the plugin's version when go-plugin refused it and
// the plugin's last stderr lines when it died, and marks it permanent when retrying cannot help.
// The process has been torn down (teardown reaps it, and go-plugin drains its stdio first), so
// its exit status and last output are complete.
func (b *Backend) startError(err error, took time.Duration) error {
	msg := err.Error()
	cmd := b.opts.Cmd[0]
	exited := false
	select {
	case <-b.proc.exited:
		exited = b.proc.pid > 0
	default:
	}
	switch {
	case IsPermanent(err):
		return permanentf("plugin %s: %v%s", cmd, err, b.stderr.tailSuffix())
	case strings.Contains(msg, "incompatible API version"):
		parts := strings.Split(b.proc.handshake.First(), "|")
		plugin := "another version"
		if len(parts) > 1 {
			plugin = "major version " + parts[1]
		}
		return permanentf("plugin %s speaks troupe stage protocol %s, host speaks %s: refusing it (rebuild the plugin against this troupe)",
			cmd, plugin, ipc.ProtocolVersion)
	case strings.Contains(msg, "incompatible core API version"):
		return permanentf("plugin %s speaks another go-plugin core protocol (handshake %q): refusing it (rebuild the plugin against this troupe)",
			cmd, b.proc.handshake.First())
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOEXEC) ||
		errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR):
		return permanentf("plugin %s cannot be executed: %v", cmd, err)
	case exited && b.proc.exitCode == cldExited && strings.Contains(b.stderr.tailSuffix(), foreignCookie):
		return permanentf("plugin %s is not a troupe plugin: it is a go-plugin plugin expecting another program's magic cookie "+
			"(it %s before its handshake)%s", cmd, b.proc.exitReason(), b.stderr.tailSuffix())
	case strings.HasPrefix(msg, "Unrecognized remote plugin message: ") && garbage(msg):
		return permanentf("plugin %s is not a troupe plugin: its first line on stdout is %q, not go-plugin's handshake line "+
			"(built with plugins/sdk, or implementing ipc/README.md?)%s", cmd, b.proc.handshake.First(), b.stderr.tailSuffix())
	case status.Code(err) == codes.FailedPrecondition:
		// The SDK refuses a host of another major version this way.
		return permanentf("plugin %s refused the host: %v%s", cmd, err, b.stderr.tailSuffix())
	case strings.HasPrefix(msg, "plugin "):
		return errors.New(msg + b.stderr.tailSuffix())
	}
	if exited {
		msg += "; plugin " + b.proc.exitReason()
	}
	return fmt.Errorf("plugin %s failed to start after %v: %s%s", cmd, took.Round(time.Millisecond), msg, b.stderr.tailSuffix())
}

// garbage says whether go-plugin's "Unrecognized remote plugin message" names a line the plugin
// printed (not a troupe plugin), rather than an empty one (its stdout closed: it died).
func garbage(msg string) bool {
	line, _, _ := strings.Cut(strings.TrimPrefix(msg, "Unrecognized remote plugin message: "), "\n")
	return strings.TrimSpace(line) != ""
}

// CheckSHA256 hashes path and compares it with want (hex).
func CheckSHA256(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("plugin: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("plugin: hashing %s: %w", path, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("plugin: %s has sha256 %s, the spec requires %s: refusing to start it",
			path, got, strings.ToLower(want))
	}
	return nil
}

// minimalEnv is the environment a plugin starts with, before Options.Env.
func minimalEnv(extra map[string]string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}
