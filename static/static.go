// Package static holds gridmap's web pages, embedded in the binary.
package static

import "embed"

// FS holds the pages and their scripts and styles.
//
//go:embed index.html app.css app.js
var FS embed.FS
