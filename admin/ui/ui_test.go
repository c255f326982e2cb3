package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/troupe-dev/troupe/admin/ui"
)

// TestHandler asks the handler, over real HTTP, for the page and its assets, and for what it
// must refuse.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()

	for _, tc := range []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html", "@keyframes flash"},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/?token=abc", 200, "text/html", "api/events"},
		{"GET", "/observer.js", 404, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"GET", "/api/tree", 404, "", ""},
		{"POST", "/", 405, "", ""},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirect following
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, tc.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, ct, tc.ctype)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("%s %s: Content-Security-Policy %q does not keep the page to its origin", tc.method, tc.path, csp)
		}
		if !strings.Contains(string(body), tc.body) {
			t.Errorf("%s %s: body does not contain %q", tc.method, tc.path, tc.body)
		}
	}
}
