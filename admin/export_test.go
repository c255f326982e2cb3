package admin

import "time"

// SetKeepalive sets the event stream's keepalive interval, for a test, and returns a function
// that restores it.
func SetKeepalive(d time.Duration) (restore func()) {
	old := keepalive
	keepalive = d
	return func() { keepalive = old }
}
