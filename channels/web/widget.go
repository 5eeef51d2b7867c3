package web

import _ "embed"

// Widget is the embeddable chat widget, served at GET /widget.js.
//
//go:embed widget.js
var Widget []byte
