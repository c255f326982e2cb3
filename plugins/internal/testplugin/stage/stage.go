// Package stage is the test plugin's record function, shared with the tests that compare a
// plugin's output with the same function run in-process. Payloads starting with a command
// word make it misbehave on purpose (see Process).
package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/troupe-dev/troupe"
)

// Process uppercases the payload and tags the record, unless the payload is a command:
//
//	error        fails the record with "bad record <key>"
//	panic        panics
//	drop         returns no outputs
//	split:N      returns N outputs, keys <key>-0 ... <key>-(N-1)
//	segv         dies of SIGSEGV, as a crash in C code would (not a Go runtime crash)
//	exit3        logs "exiting with code 3" and exits with code 3
//	hang         sleeps for an hour, ignoring ctx
//	leak         allocates and touches memory, 16 MiB at a time, then hangs
//	spin         burns CPU forever
//	child        starts `sleep 1000` in the plugin's process group, logs "child <pid>", hangs
func Process(ctx context.Context, rec troupe.Record) ([]troupe.Record, error) {
	p := rec.Payload
	switch {
	case bytes.Equal(p, []byte("error")):
		return nil, errors.New("bad record " + rec.Key)
	case bytes.Equal(p, []byte("panic")):
		panic("poison record " + rec.Key)
	case bytes.Equal(p, []byte("drop")):
		return nil, nil
	case bytes.HasPrefix(p, []byte("split:")):
		n, err := strconv.Atoi(string(p[6:]))
		if err != nil {
			return nil, err
		}
		outs := make([]troupe.Record, n)
		for i := range outs {
			outs[i] = troupe.Record{Key: fmt.Sprintf("%s-%d", rec.Key, i), Payload: []byte(strconv.Itoa(i))}
		}
		return outs, nil
	case bytes.Equal(p, []byte("segv")):
		segfault()
	case bytes.Equal(p, []byte("exit3")):
		log.Print("exiting with code 3")
		os.Exit(3)
	case bytes.Equal(p, []byte("hang")):
		time.Sleep(time.Hour)
	case bytes.Equal(p, []byte("leak")):
		var hold [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			hold = append(hold, b)
			time.Sleep(5 * time.Millisecond)
			if len(hold) > 1<<10 {
				break
			}
		}
		time.Sleep(time.Hour)
	case bytes.Equal(p, []byte("spin")):
		for x := 0; ; x++ {
			if x == -1 {
				return nil, nil
			}
		}
	case bytes.Equal(p, []byte("child")):
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		log.Printf("child %d", cmd.Process.Pid)
		time.Sleep(time.Hour)
	}
	rec.Payload = bytes.ToUpper(p)
	meta := maps.Clone(rec.Meta) // the input's map is not ours to write
	if meta == nil {
		meta = map[string]string{}
	}
	meta["by"] = "testplugin"
	meta["stage"] = troupe.StageName(ctx)
	meta["attempt"] = strconv.Itoa(troupe.Attempt(ctx))
	rec.Meta = meta
	return []troupe.Record{rec}, nil
}

// Setup logs "setup <opts>" when TESTPLUGIN_LOG_SETUP is set, fails when the options say
// {"fail_setup": true}, and checks that integral numbers arrive as int.
func Setup(opts map[string]any) error {
	if os.Getenv("TESTPLUGIN_LOG_SETUP") != "" {
		log.Printf("setup %v", opts)
	}
	if opts["fail_setup"] == true {
		return errors.New("setup refused: fail_setup is set")
	}
	if v, ok := opts["n"]; ok {
		if _, isInt := v.(int); !isInt {
			return fmt.Errorf("option n is %T, want int", v)
		}
	}
	return nil
}

// segfault restores SIGSEGV's default action, which the Go runtime replaced, and raises it: the
// process dies of the signal as it would from a crash in C code.
func segfault() {
	var act [4]uint64 // struct kernel_sigaction: handler (SIG_DFL = 0), flags, restorer, mask
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGSEGV), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	_ = syscall.Kill(os.Getpid(), syscall.SIGSEGV)
	time.Sleep(time.Hour)
}
