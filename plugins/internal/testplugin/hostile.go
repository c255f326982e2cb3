package main

// Hostile modes: plugins that break the stage protocol or the start-up, for the host's tests.
//
//	TESTPLUGIN_STARTS=<file>             appends a byte to file at every start (to count starts)
//	TESTPLUGIN_DIE_BEFORE_HANDSHAKE=<n>  with TESTPLUGIN_STARTS: the first n starts SIGKILL
//	                                     themselves before the handshake
//	TESTPLUGIN_FOREIGN_COOKIE=1          serves as a go-plugin plugin of another program (another
//	                                     magic cookie): not a troupe plugin
//	TESTPLUGIN_PROTOCOL=<mode>           replaces the SDK with a data loop that breaks the protocol
//	                                     (modes below) in incarnations < TESTPLUGIN_FAULTY
//	                                     (default 1: only a worker's first process misbehaves)
//
// Protocol modes, applied to the first batch a faulty process receives (or from the first record):
//
//	dup          reports its first record twice, then the others (each result shifted by one)
//	foreign      gives the first output the seq of a record never sent
//	extra        grants one credit, and reports two records for the one it gets
//	error-index  names an error index past the end of the results frame
//	flag         marks the first output as an END marker
//	silent       takes records and never answers
//	stingy:N     grants N credits and never returns any, answering every record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/troupe-dev/troupe/ipc"
	"github.com/troupe-dev/troupe/plugins/internal/pluginproto"
	"github.com/troupe-dev/troupe/plugins/internal/testplugin/stage"
)

// hostileStart applies the start-up modes; it returns only when none ends the process.
func hostileStart() {
	if path := os.Getenv("TESTPLUGIN_STARTS"); path != "" {
		n := countStart(path)
		if limit, err := strconv.Atoi(os.Getenv("TESTPLUGIN_DIE_BEFORE_HANDSHAKE")); err == nil && n <= limit {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		}
	}
	if os.Getenv("TESTPLUGIN_FOREIGN_COOKIE") != "" {
		// What a go-plugin plugin of another program does when a troupe host runs it.
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: plugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "OTHER_APP_PLUGIN", MagicCookieValue: "other"},
			Plugins:         pluginproto.Set(&pluginproto.Plugin{}),
			GRPCServer:      plugin.DefaultGRPCServer,
		})
		os.Exit(0)
	}
	if mode := os.Getenv("TESTPLUGIN_PROTOCOL"); mode != "" {
		serveHostile(mode)
	}
}

// countStart appends a byte to path and returns the file's new size: this start's number.
func countStart(path string) int {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testplugin:", err)
		os.Exit(2)
	}
	defer f.Close()
	if _, err := f.Write([]byte{'.'}); err != nil {
		fmt.Fprintln(os.Stderr, "testplugin:", err)
		os.Exit(2)
	}
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testplugin:", err)
		os.Exit(2)
	}
	return int(st.Size())
}

// hostile is a Stage service whose data loop breaks the protocol on purpose.
type hostile struct {
	ipc.UnimplementedStageServer
	mode   string
	faulty int // incarnations below this misbehave

	mu   sync.Mutex
	conn net.Conn
}

func serveHostile(mode string) {
	faulty := 1
	if v, err := strconv.Atoi(os.Getenv("TESTPLUGIN_FAULTY")); err == nil {
		faulty = v
	}
	ppid := os.Getppid()
	go func() {
		for range time.Tick(200 * time.Millisecond) {
			if os.Getppid() != ppid {
				os.Exit(1)
			}
		}
	}()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pluginproto.Handshake(ipc.ProtocolMajor),
		Plugins:         pluginproto.Set(&pluginproto.Plugin{Impl: &hostile{mode: mode, faulty: faulty}}),
		GRPCServer:      plugin.DefaultGRPCServer,
	})
	os.Exit(0)
}

func (h *hostile) Configure(_ context.Context, req *ipc.ConfigureRequest) (*ipc.ConfigureResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		return nil, status.Error(codes.FailedPrecondition, "already configured")
	}
	f := os.NewFile(uintptr(req.GetData().GetFd()), "troupe-data")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "data fd: %v", err)
	}
	h.conn = conn
	credits := req.GetCredits()
	faulty := int(req.GetIncarnation()) < h.faulty
	mode, arg, _ := strings.Cut(h.mode, ":")
	if faulty && mode == "extra" {
		credits = 1 // one record outstanding at a time: the extra result is for no record at all
	}
	if faulty && mode == "stingy" {
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			return nil, status.Errorf(codes.InvalidArgument, "stingy:%s: want a number of credits", arg)
		}
		credits = uint32(n)
	}
	if !faulty {
		mode = ""
	}
	go h.loop(conn, int(req.GetMaxFrame()), mode)
	return &ipc.ConfigureResponse{Protocol: &ipc.Version{Major: ipc.ProtocolMajor, Minor: ipc.ProtocolMinor}, Credits: credits}, nil
}

func (h *hostile) Shutdown(context.Context, *ipc.ShutdownRequest) (*ipc.ShutdownResponse, error) {
	return &ipc.ShutdownResponse{}, nil
}

// loop answers batches; mode "" is the well-behaved protocol.
func (h *hostile) loop(conn net.Conn, maxFrame int, mode string) {
	r := ipc.NewFrameReader(conn, maxFrame)
	w := ipc.NewFrameWriter(conn, maxFrame)
	first := true
	for {
		f, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				os.Exit(0)
			}
			fmt.Fprintln(os.Stderr, "testplugin: data connection:", err)
			os.Exit(1)
		}
		if f.Type != ipc.FrameBatch || len(f.Records) == 0 {
			continue
		}
		recs := f.Records
		m := ""
		if first || mode == "silent" || strings.HasPrefix(mode, "stingy") {
			m = mode
		}
		if m == "dup" && len(recs) < 2 {
			m = "" // nothing to shift: wait for a batch of two or more
		} else {
			first = false
		}
		if m == "silent" {
			continue
		}
		type outcome struct {
			outs []*ipc.Record
			err  error
		}
		per := make([]outcome, len(recs))
		for i, rec := range recs {
			outs, err := stage.Process(context.Background(), rec.Record)
			per[i].err = err
			for _, o := range outs {
				per[i].outs = append(per[i].outs, &ipc.Record{Record: o, Seq: rec.Seq, Sub: rec.Sub, Weight: rec.Weight})
			}
		}
		if m == "dup" {
			// The first record's result twice, then the others but the last: every result from
			// the second on lands on the record before its own.
			per = append(per[:1:1], per[:len(per)-1]...)
		}
		res := &ipc.Results{}
		for i, o := range per {
			if o.err != nil {
				res.Errors = append(res.Errors, &ipc.RecordError{Index: uint32(i), Message: o.err.Error()})
				res.Counts = append(res.Counts, 0)
				continue
			}
			res.Counts = append(res.Counts, uint32(len(o.outs)))
			res.Outputs = append(res.Outputs, o.outs...)
		}
		switch m {
		case "foreign":
			if len(res.Outputs) > 0 {
				res.Outputs[0].Seq += 1 << 40
			}
		case "extra":
			res.Counts = append(res.Counts, 0)
		case "error-index":
			res.Counts = append(res.Counts[:0], 0)
			res.Outputs = nil
			res.Errors = []*ipc.RecordError{{Index: uint32(len(recs) + 5), Message: "no such record"}}
		case "flag":
			if len(res.Outputs) > 0 {
				res.Outputs[0].Flag = ipc.FlagEnd
			}
		}
		_ = w.WriteResults(res)
		if !strings.HasPrefix(mode, "stingy") {
			_ = w.WriteCredit(uint32(len(recs)))
		}
		if err := w.Flush(); err != nil {
			os.Exit(1)
		}
	}
}
