// Package static holds gridmap's web pages, embedded in the binary.
package static

import "embed"

// FS holds the pages, their scripts and styles, and the dictionaries
// (i18n/*.json) the pages translate with.
//
//go:embed index.html app.css console.js api.js map.js login.html login.js i18n.js i18n/*.json vendor
//go:embed editor.html editor.js editor.css dom.js indicators.js workers.js patrol.js latest.js
var FS embed.FS
