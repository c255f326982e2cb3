package main

// Hostile descendants, for the tests that check that no process started by a plugin outlives
// it or its host. TESTPLUGIN_ORPHAN makes the plugin start, before it serves:
//
//	group    a child in the plugin's process group that ignores SIGTERM
//	setsid   a daemon: a child that calls setsid and forks again, then exits, so that the
//	         grandchild is in no process group or session of the plugin's and has lost its parent
//
// The arguments orphan=MODE and pidfile=PATH do the same as the variables, for hosts that pass
// the plugin no environment of their own (plugins/internal/testhost).
//
// The process that must not survive appends its pid and a newline to the file named by
// TESTPLUGIN_PIDFILE, then sleeps, ignoring SIGTERM, SIGINT and SIGHUP; the plugin serves only
// once that pid is written. Each is this binary run again with TESTPLUGIN_DESCENDANT set, caught
// here before main; the write end of a pipe (fd 3), closed once the pid is written, tells the
// plugin when.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	orphanEnv     = "TESTPLUGIN_ORPHAN"
	pidFileEnv    = "TESTPLUGIN_PIDFILE"
	descendantEnv = "TESTPLUGIN_DESCENDANT"
)

func init() {
	for _, arg := range os.Args[1:] {
		if v, ok := strings.CutPrefix(arg, "orphan="); ok {
			os.Setenv(orphanEnv, v)
		} else if v, ok := strings.CutPrefix(arg, "pidfile="); ok {
			os.Setenv(pidFileEnv, v)
		}
	}
	switch role := os.Getenv(descendantEnv); role {
	case "":
	case "survivor":
		survive()
	case "daemonize":
		// The middle of the double fork: start the survivor in a new session, and exit.
		if err := spawn("survivor", &syscall.SysProcAttr{Setsid: true}, os.NewFile(3, "ready")); err != nil {
			fmt.Fprintln(os.Stderr, "testplugin daemonize:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "testplugin: unknown %s=%q\n", descendantEnv, role)
		os.Exit(2)
	}
	mode := os.Getenv(orphanEnv)
	if mode == "" {
		return
	}
	if err := orphan(mode); err != nil {
		fmt.Fprintln(os.Stderr, "testplugin:", err)
		os.Exit(2)
	}
}

// orphan starts the descendant and waits until it has written its pid.
func orphan(mode string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	switch mode {
	case "group":
		err = spawn("survivor", nil, w)
	case "setsid":
		err = spawn("daemonize", nil, w)
	default:
		err = fmt.Errorf("unknown %s=%q", orphanEnv, mode)
	}
	w.Close()
	if err != nil {
		return err
	}
	r.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("waiting for the descendant's pid: %w", err)
	}
	return nil
}

// spawn runs this binary again as role, with no stdio and ready as fd 3. The daemonize role is
// waited for; the survivor never is: it outlives its parent, or tries to.
func spawn(role string, attr *syscall.SysProcAttr, ready *os.File) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self) // no arguments: the environment carries the role
	cmd.Env = append(os.Environ(), descendantEnv+"="+role)
	cmd.SysProcAttr = attr
	cmd.ExtraFiles = []*os.File{ready}
	if role == "daemonize" {
		return cmd.Run()
	}
	return cmd.Start()
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
	syscall.Close(3) // the plugin may serve now
	for {
		time.Sleep(time.Hour)
	}
}
