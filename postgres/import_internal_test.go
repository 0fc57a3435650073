package postgres

import (
	"context"
	"errors"
	"testing"
)

// TestCopiedAnswersACancelAsCancelled: a COPY cut off by a cancel fails as
// a closed connection, which would read as the database being unreachable.
func TestCopiedAnswersACancelAsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	imp := &importer{copying: make(chan error, 1)}
	imp.copying <- errors.New("write: use of closed network connection")
	cancel()
	if err := imp.copied(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("a COPY cut off by a cancel: %v, want context.Canceled", err)
	}
	imp.copying = make(chan error, 1)
	imp.copying <- errors.New("ERROR: invalid input syntax")
	if err := imp.copied(context.Background()); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("a COPY failing on its own: %v, want its error", err)
	}
	if err := imp.copied(context.Background()); err != nil {
		t.Errorf("no COPY under way: %v", err)
	}
}
