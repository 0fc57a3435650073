package main

import (
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
)

func TestPoolOptions(t *testing.T) {
	tests := []struct {
		name      string
		maxConns  string
		statement time.Duration
		want      postgres.Options
		err       string
	}{
		{"defaults", "0", postgres.DefaultStatementTimeout, postgres.Options{StatementTimeout: postgres.DefaultStatementTimeout}, ""},
		{"a pool size", "24", time.Minute, postgres.Options{MaxConns: 24, StatementTimeout: time.Minute}, ""},
		{"no statement timeout leaves the database's", "0", 0, postgres.Options{StatementTimeout: -1}, ""},
		{"a negative pool size is refused", "-1", time.Minute, postgres.Options{}, "--db-max-conns"},
		{"a pool size must be a number", "many", time.Minute, postgres.Options{}, "whole number"},
		{"a negative statement timeout is refused", "0", -time.Second, postgres.Options{}, "--db-statement-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := poolOptions(tt.maxConns, tt.statement)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %v, want an error mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
