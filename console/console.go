// Package console is Parley's web console: a single page, served by the
// gateway under /console/, for deploying handlers and watching bots. It is
// static HTML, CSS and JavaScript with no build step; everything it shows
// or changes goes through the management API (/v1) with the admin key the
// user enters, which the page keeps in the tab's sessionStorage only. Its
// views have URLs in the fragment (/console/#/{bot}/{view}), so the server
// serves the same page for all of them.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the console's files from its root ("/" is the page). The
// page allows scripts, styles and requests from its own origin only.
func Handler() http.Handler {
	root, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	fileServer := http.FileServer(http.FS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}
