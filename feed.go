package gridmap

import (
	"context"
	"encoding/json"
)

// FeedEvent is one entry of the live feed: a report event (Type "report",
// Data the event with its whole report), a boundary change (Type
// "boundary", Data the Change as announced) or a worker's new position
// (Type "worker", Data the position).
type FeedEvent struct {
	// ID is the event's place in the feed, what a client resumes after.
	ID   int64
	Type string // "report", "boundary" or "worker"
	Data json.RawMessage
	// Owners is a report event's assignment, for keeping a scoped
	// caller's stream inside its jurisdiction (Scope.HoldsReport).
	Owners *Assignment
	// Worker is a worker event's grid, for showing it only to callers
	// that may see the worker (Caller.MaySeeWorkers, Scope.HoldsWorker);
	// nil for a worker without a person link.
	Worker *WorkerGrid
}

// Feed is the live feed of report events and boundary changes for
// dispatchers' maps. Every event gets its number once the transaction that
// wrote it has committed, and numbers increase along the feed: reading after
// a number gets every later event exactly once, in the same order for every
// client, however concurrent writers interleave. An event written after
// another one committed comes after it. Report events stored before the feed
// numbered events keep their ids as numbers, below every later number.
type Feed interface {
	// Since returns up to limit events numbered after after (0: from the
	// first), in order.
	Since(ctx context.Context, after int64, limit int) ([]FeedEvent, error)
	// Latest returns the number of the newest event (0 when none): a new
	// client starts after it.
	Latest(ctx context.Context) (int64, error)
	// Subscribe returns a channel that receives a value whenever events
	// after Latest may be waiting, and a function that ends the
	// subscription.
	Subscribe() (<-chan struct{}, func())
}
