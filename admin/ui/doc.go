// Package ui is the observer page of the admin server: one static page, embedded in the binary,
// that draws a run's supervision tree live the way Erlang's observer draws it (boxes from the root
// supervisor on the left to the plugin processes on the right, joined by lines), each node with
// its kind, name, state, restart count, in-flight records and credits, pid, RSS and CPU; a node
// flashes when it restarts. Beside the tree: throughput (records out/s) and per-stage latency
// (p50/p99) over the last five minutes as small SVG charts, the dead letters so far with their
// reasons, and the supervision events as they come.
//
// The page only reads the admin server's same-origin JSON: it polls /api/tree and /api/stats
// every second and listens to /api/events (server-sent events). Given a `?token=` in its URL, it
// sends it as "Authorization: Bearer" on its fetches and as `?token=` on the event stream (an
// EventSource cannot set headers). Nothing is fetched from elsewhere and there is no build step:
// the page is static/index.html with static/observer.css and static/observer.js put inline
// where it names them (one document, so one request for the page itself, which a server with a
// token must accept with `?token=` as it does /api/events), and the charts are drawn by hand in
// SVG. Its Content-Security-Policy lets it run only that script and style and read only its own
// origin.
//
// Every node element carries data-path, data-kind, data-state, data-pid, data-restarts and
// data-flashes (how many times it has flashed), the hooks its end-to-end test in headless
// Chromium reads.
package ui
