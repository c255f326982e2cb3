// Package admin is troupe's admin server: what a run (troupe run --admin ADDR) or an engine
// (troupe serve) shows while it works, over HTTP.
//
//	GET /            the observer page (package admin/ui), or a list of the endpoints
//	GET /healthz     200 "ok" while the process serves
//	GET /readyz      200 while the source and the sink are open and the tree is not giving
//	                 up; 503 with the reason otherwise (also once the run has ended)
//	GET /metrics     Prometheus exposition (the official client, a registry of the server's own)
//	GET /api/tree    the supervision tree as JSON (Node)
//	GET /api/stats   the figures so far as JSON (Stats)
//	GET /api/events  the supervision events as server-sent events ("event: supervision", data
//	                 an Event), with a ": keepalive" comment every 15 s
//
// Others (the engine's job API) add their handlers with Server.Handle, behind the same token
// check. Options.Events also appends the events, one JSON Event a line, to a file.
//
// # Security
//
// The server listens on loopback by default (127.0.0.1, a free port). A non-loopback address is
// refused unless a token is set (Options.Token; the troupe command takes --admin-token or, to
// keep it out of ps, the environment variable TROUPE_ADMIN_TOKEN). With a token, every request
// must carry "Authorization: Bearer <token>" or gets 401; /api/events also accepts
// ?token=<token>, as a browser's EventSource cannot set headers. The server sends no
// cross-origin headers: the observer page fetches from its own origin only. The page itself
// (at "/") also takes ?token=, for the same reason.
//
// # What it shows
//
// The server shows an Observed: ObserveJob adapts a running actors.Job (the runtime knows
// nothing of HTTP: it offers Job.Snapshot, Job.Subscribe and Job.Latency). A run's tree is its
// root supervisor ("/") with the source ("/source"), each stage ("/stage:NAME", its mailbox
// its distributor's, its in-flight the records it holds, queued or at its workers, its credits
// the sum of its workers'),
// each stage's workers ("/stage:NAME/worker:N", with state, restarts, last exit reason, the
// records they hold, the credits they have left and their mailbox), under a worker its plugin process
// ("/stage:NAME/worker:N/plugin", with pid, RSS and CPU %, measured with gopsutil when the tree
// is asked for), and the sink ("/sink"). Events name nodes by the same paths.
//
// Metrics are read from the Observed at scrape time, nothing is counted twice:
//
//	troupe_stage_records_total{stage,outcome}  in, out, failed, retried, dead_letter, dropped
//	troupe_stage_in_flight{stage}               records queued in the stage and at its workers
//	troupe_stage_mailbox_messages{stage}        messages waiting for its distributor
//	troupe_stage_credits_available{stage}       how many more its live workers may be given
//	troupe_stage_latency_seconds{stage}         histogram of the time records spent at a worker
//	troupe_worker_restarts_total{stage,worker}
//	troupe_plugin_rss_bytes{stage,worker,pid}
//	troupe_plugin_cpu_seconds_total{stage,worker,pid}
//	troupe_records_in_total, troupe_records_out_total, troupe_dead_letters_total,
//	troupe_records_dropped_total
//	troupe_run_state{state}                     1 for the run's state, 0 for the others
//
// with the Go runtime's and the process's own (go_*, process_*).
package admin
