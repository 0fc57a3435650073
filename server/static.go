package server

import (
	"io/fs"
	"net/http"

	"github.com/gridmap/gridmap/static"
	"github.com/labstack/echo/v4"
)

// staticRoutes serves the embedded web pages: the start page, the sign-in
// page at /login, their scripts and styles, and the dictionaries.
func (s *Server) staticRoutes() {
	files := http.FileServer(http.FS(static.FS))
	serve := echo.WrapHandler(files)
	s.echo.GET("/", serve)
	for _, name := range []string{"/app.js", "/app.css", "/login.js", "/i18n.js"} {
		s.echo.GET(name, serve)
	}
	dictionaries, _ := fs.Glob(static.FS, "i18n/*.json") // the pattern is valid: no error
	for _, name := range dictionaries {
		s.echo.GET("/"+name, serve)
	}
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
