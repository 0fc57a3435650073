package server

import (
	"errors"
	"net/http"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// handleHealthz answers while the process runs.
func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 once the service can serve requests, 503
// otherwise. The client gets a reason it can act on (the message of the
// *gridmap.Error in Ready's error, such as "the database is unreachable"),
// never the error underneath; the whole error goes to the log.
func (s *Server) handleReadyz(c echo.Context) error {
	if s.deps.Ready != nil {
		if err := s.deps.Ready(c.Request().Context()); err != nil {
			s.logger.Warn("not ready", "request_id", requestID(c), "err", err)
			reason := "the service is not ready; its log says why"
			var ge *gridmap.Error
			if errors.As(err, &ge) {
				reason = ge.Message
			}
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// handleMetrics serves Prometheus metrics.
func (s *Server) handleMetrics(c echo.Context) error {
	promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}).ServeHTTP(c.Response(), c.Request())
	return nil
}
