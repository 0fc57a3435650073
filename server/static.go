package server

import (
	"net/http"

	"github.com/gridmap/gridmap/static"
	"github.com/labstack/echo/v4"
)

// staticRoutes serves the embedded web pages.
func (s *Server) staticRoutes() {
	files := http.FileServer(http.FS(static.FS))
	serve := echo.WrapHandler(files)
	s.echo.GET("/", serve)
	s.echo.GET("/app.js", serve)
	s.echo.GET("/app.css", serve)
}
