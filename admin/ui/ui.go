package ui

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

var (
	//go:embed static/index.html
	indexHTML []byte
	//go:embed static/observer.css
	observerCSS []byte
	//go:embed static/observer.js
	observerJS []byte
)

// The page is one document: index.html with observer.css and observer.js put in place of the
// comments that name them. One document means one request, so a page opened as
// "/?token=…" (an address a browser cannot add a header to) needs no other authorised request
// but the JSON it fetches itself with the header.
//
// It is assembled on first use (Handler), not when the program starts: every troupe process
// links this package, and most never serve the page.
var assembled = sync.OnceValues(assemble)

func assemble() ([]byte, string) {
	doc := indexHTML
	var hashes [2]string
	for i, part := range []struct {
		file, tag string
		body      []byte
	}{{"observer.css", "style", observerCSS}, {"observer.js", "script", observerJS}} {
		marker := []byte("<!-- " + part.file + " -->")
		if bytes.Count(doc, marker) != 1 || bytes.Contains(bytes.ToLower(part.body), []byte("</"+part.tag)) {
			panic(fmt.Sprintf("admin/ui: index.html must name %s once, and it must not close its <%s>", part.file, part.tag))
		}
		sum := sha256.Sum256(part.body)
		hashes[i] = "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		inline := append(append([]byte("<"+part.tag+">"), part.body...), "</"+part.tag+">"...)
		doc = bytes.Replace(doc, marker, inline, 1)
	}
	// The page runs only its own script and style (by hash), and reads only its own origin.
	// Text that came from a run (names, exit reasons, dead-letter keys and reasons) is only
	// ever set as text.
	policy := strings.Join([]string{"default-src 'none'", "script-src " + hashes[1], "style-src " + hashes[0],
		"img-src 'self' data:", "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"}, "; ")
	return doc, policy
}

// Handler serves the observer page at "/" (GET and HEAD); any other path is 404. Mount it at
// the root of the admin server, whose /api/tree, /api/stats and /api/events it reads (with
// paths relative to the page).
func Handler() http.Handler {
	page, csp := assembled()
	start := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the page's address may hold the token
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "index.html", start, bytes.NewReader(page))
	})
}
