package main

// Hostile descendants, for the tests that check that no process started by a plugin outlives
// it or its host. TESTPLUGIN_ORPHAN makes the plugin start, before it serves:
//
//	group    a child in the plugin's process group that ignores SIGTERM
//	setsid   a daemon: a child that calls setsid and forks again, then exits, so that the
//	         grandchild is in no process group or session of the plugin's and has lost its parent
//
// The process that must not survive appends its pid and a newline to the file named by
// TESTPLUGIN_PIDFILE, then sleeps, ignoring SIGTERM, SIGINT and SIGHUP. Each is this binary run
// again with TESTPLUGIN_DESCENDANT set, caught here before main.

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const (
	orphanEnv     = "TESTPLUGIN_ORPHAN"
	pidFileEnv    = "TESTPLUGIN_PIDFILE"
	descendantEnv = "TESTPLUGIN_DESCENDANT"
)

func init() {
	switch role := os.Getenv(descendantEnv); role {
	case "":
	case "survivor":
		survive()
	case "daemonize":
		// The middle of the double fork: start the survivor in a new session, and exit.
		if err := spawn("survivor", &syscall.SysProcAttr{Setsid: true}, false); err != nil {
			fmt.Fprintln(os.Stderr, "testplugin daemonize:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "testplugin: unknown %s=%q\n", descendantEnv, role)
		os.Exit(2)
	}
	var err error
	switch mode := os.Getenv(orphanEnv); mode {
	case "":
		return
	case "group":
		err = spawn("survivor", nil, false)
	case "setsid":
		err = spawn("daemonize", nil, true)
	default:
		err = fmt.Errorf("unknown %s=%q", orphanEnv, mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testplugin:", err)
		os.Exit(2)
	}
}

// spawn runs this binary again as role, with no stdio; wait waits for it to exit.
func spawn(role string, attr *syscall.SysProcAttr, wait bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), descendantEnv+"="+role)
	cmd.SysProcAttr = attr
	if wait {
		return cmd.Run()
	}
	return cmd.Start() // never waited for: it outlives us, or tries to
}

func survive() {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if path := os.Getenv(pidFileEnv); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			os.Exit(1)
		}
		f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		f.Close()
	}
	for {
		time.Sleep(time.Hour)
	}
}
