package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is where the server listens when Options.Addr is empty: loopback, a free port.
const DefaultAddr = "127.0.0.1:0"

// TokenEnv is the environment variable the troupe command reads the token from.
const TokenEnv = "TROUPE_ADMIN_TOKEN"

// keepalive is the interval of the comment lines that keep an event stream open through proxies.
var keepalive = 15 * time.Second

// Options configure a Server.
type Options struct {
	// Addr is where to listen, host:port (DefaultAddr when empty). A non-loopback address
	// needs a Token.
	Addr string
	// Token, when set, must come with every request as "Authorization: Bearer <token>" (on
	// /api/events, ?token=<token> also does, for EventSource); otherwise 401. Required for a
	// non-loopback Addr.
	Token string
	// Logger gets the server's errors (nil: discarded).
	Logger *slog.Logger
	// Events, if set, is a file that also gets the supervision events, one JSON object a line
	// (appended to).
	Events string
}

// Server is the admin server: health, readiness, Prometheus metrics, the tree, the figures and
// the event stream of what it observes, and the handlers others add with Handle.
type Server struct {
	opts Options
	obs  Observed
	log  *slog.Logger
	mux  *http.ServeMux
	reg  *prometheus.Registry

	procs procStats

	mu       sync.Mutex
	rootSet  bool
	started  bool
	ln       net.Listener
	srv      *http.Server
	served   chan struct{}
	events   *EventLog
	ctx      context.Context // cancelled by Shutdown: ends event streams
	cancel   context.CancelFunc
	shutdown bool
}

// CheckOptions reports what New would refuse in opts: a malformed address, or a non-loopback
// one without a token.
func CheckOptions(opts Options) error {
	addr := opts.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w (want host:port, e.g. 127.0.0.1:9090)", addr, err)
	}
	if opts.Token == "" && !loopback(host) {
		return fmt.Errorf("admin address %q is not a loopback address: serving it to the network needs a token "+
			"(the troupe command: --admin-token or the environment variable %s; every request must then carry \"Authorization: Bearer <token>\"), "+
			"or listen on 127.0.0.1", addr, TokenEnv)
	}
	return nil
}

// loopback says whether host names only the local machine: "localhost" or a loopback IP. An
// empty host (every interface) is not.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// New makes a server that shows obs; Start starts it. It refuses a non-loopback address
// without a token (see CheckOptions).
func New(opts Options, obs Observed) (*Server, error) {
	if err := CheckOptions(opts); err != nil {
		return nil, err
	}
	if obs == nil {
		return nil, errors.New("admin: nothing to observe")
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	s := &Server{opts: opts, obs: obs, log: opts.Logger, mux: http.NewServeMux(), reg: prometheus.NewRegistry()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.reg.MustRegister(collector{s}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	}))
	s.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	s.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.log}}))
	s.Handle("GET /api/tree", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t, _ := s.tree()
		writeJSON(w, t)
	}))
	s.Handle("GET /api/stats", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.obs.Stats()) }))
	s.mux.Handle("GET /api/events", s.auth(http.HandlerFunc(s.eventStream), true))
	return s, nil
}

// Handle adds a handler for pattern (net/http patterns, e.g. "GET /api/jobs/{id}"), behind the
// same token check as the server's own. A handler for "/" (the observer page) must be added
// before Start; without one, "/" shows a short page that lists the endpoints. The page, like
// /api/events, also takes the token as ?token=: a browser opening it cannot send a header.
func (s *Server) Handle(pattern string, h http.Handler) {
	root := false
	if p := strings.TrimSpace(pattern); p == "/" || p == "GET /" {
		root = true
		s.mu.Lock()
		s.rootSet = true
		s.mu.Unlock()
	}
	s.mux.Handle(pattern, s.auth(h, root))
}

// Registry is the server's Prometheus registry: add collectors to show them on /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Start listens on the address and serves in the background; Addr is valid afterwards.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("admin: already started")
	}
	if !s.rootSet {
		s.rootSet = true
		s.mux.Handle("/", s.auth(http.HandlerFunc(placeholder), true))
	}
	if s.opts.Events != "" {
		el, err := OpenEventLog(s.obs, s.opts.Events)
		if err != nil {
			return err
		}
		s.events = el
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		if s.events != nil {
			s.events.Close(context.Background())
		}
		return fmt.Errorf("admin: %w", err)
	}
	s.started, s.ln = true, ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, BaseContext: func(net.Listener) context.Context { return s.ctx }}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server", "error", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on (host:port), once started; else the one asked for.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.opts.Addr
}

// URL is the server's base URL, e.g. "http://127.0.0.1:9090/".
func (s *Server) URL() string { return "http://" + s.Addr() + "/" }

// Shutdown ends the event streams, stops the server (waiting for requests in progress until
// ctx ends) and closes the events file, having written what the run sent it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return nil
	}
	s.shutdown = true
	srv, served, events := s.srv, s.served, s.events
	s.mu.Unlock()
	s.cancel()
	var errs []error
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
			srv.Close()
		}
		<-served
	}
	if events != nil {
		errs = append(errs, events.Close(ctx))
	}
	return errors.Join(errs...)
}

// auth checks the token, if there is one; query lets ?token= stand for the header (the page at
// "/" and /api/events, which a browser requests without headers; for "/", only the document
// itself: other paths under it need the header).
func (s *Server) auth(h http.Handler, query bool) http.Handler {
	if s.opts.Token == "" {
		return h
	}
	want := []byte(s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && query && (r.URL.Path == "/" || r.URL.Path == "/api/events") {
			got, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
		}
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="troupe"`)
			http.Error(w, "401 unauthorized: this server needs \"Authorization: Bearer <token>\"", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// tree is the observed tree with the plugin processes' RSS and CPU filled in, and their CPU
// seconds by pid.
func (s *Server) tree() (Node, map[int]float64) {
	t := s.obs.Tree()
	cpu := s.procs.enrich(&t)
	t.normalize()
	return t, cpu
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.obs.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	io.WriteString(w, "ready\n")
}

// eventStream sends the supervision events as server-sent events until the client goes, the
// run ends or the server shuts down.
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	events := s.obs.Subscribe(ctx)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": troupe supervision events\n\n")
	fl.Flush()
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			b, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "event: supervision\ndata: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
		case <-tick.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-ctx.Done():
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// placeholder is "/" when no observer page was added.
func placeholder(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, `<!doctype html><html><head><meta charset="utf-8"><title>troupe</title></head><body>
<h1>troupe admin</h1><ul>
<li><a href="api/tree">/api/tree</a>: the supervision tree (JSON)</li>
<li><a href="api/stats">/api/stats</a>: the figures so far (JSON)</li>
<li><a href="api/events">/api/events</a>: supervision events (server-sent events)</li>
<li><a href="metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="healthz">/healthz</a>, <a href="readyz">/readyz</a></li>
</ul></body></html>
`)
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error(fmt.Sprint(v...)) }
