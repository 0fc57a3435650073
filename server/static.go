package server

import (
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"net/http"
	"regexp"
	"strings"

	"github.com/gridmap/gridmap/static"
	"github.com/labstack/echo/v4"
)

// staticRoutes serves the embedded web pages: the start page, the sign-in
// page at /login, their scripts and styles, and the dictionaries.
func (s *Server) staticRoutes() {
	files := http.FileServer(http.FS(static.FS))
	serve := echo.WrapHandler(files)
	s.echo.GET("/", serve)
	// Every other embedded file but the pages is served at its path, to
	// everyone (ruleFor); the vendored libraries may be kept a day.
	s.assets = map[string]bool{}
	vendored := echo.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	}))
	err := fs.WalkDir(static.FS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(name, ".html") || strings.HasSuffix(name, ".md") {
			return err
		}
		path := "/" + name
		s.assets[path] = true
		if strings.HasPrefix(name, "vendor/") {
			s.echo.GET(path, vendored)
		} else {
			s.echo.GET(path, serve)
		}
		return nil
	})
	if err != nil {
		panic("static: " + err.Error())
	}
	editor, err := fs.ReadFile(static.FS, "editor.html")
	if err != nil {
		panic("static: editor.html is not embedded: " + err.Error())
	}
	s.echo.GET("/editor", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMETextHTMLCharsetUTF8, editor)
	})
	login, err := fs.ReadFile(static.FS, "login.html")
	if err != nil {
		panic("static: login.html is not embedded: " + err.Error())
	}
	s.echo.GET("/login", func(c echo.Context) error {
		// Never stored: the page where passwords are typed is always the
		// running server's own.
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, echo.MIMETextHTMLCharsetUTF8, login)
	})
}

// importMap finds the pages' import maps: the one inline script the
// Content-Security-Policy lets through, each by the hash of its text.
var importMap = regexp.MustCompile(`(?s)<script type="importmap">(.*?)</script>`)

// importMapSources are the CSP sources ('sha256-...') of the import maps
// of the embedded pages.
func importMapSources() []string {
	var out []string
	pages, _ := fs.Glob(static.FS, "*.html")
	for _, name := range pages {
		page, err := fs.ReadFile(static.FS, name)
		if err != nil {
			panic("static: " + err.Error())
		}
		for _, m := range importMap.FindAllSubmatch(page, -1) {
			sum := sha256.Sum256(m[1])
			out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
	}
	return out
}
