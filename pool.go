package gridmap

import "time"

// PoolStats describes the database connection pool at one moment: its
// connections, and every wait for one since the process started.
type PoolStats struct {
	MaxConns int32 // the pool's size limit
	InUse    int32 // connections acquired by a request or a task
	Idle     int32 // open connections nobody holds
	Total    int32 // open connections, and those being opened

	// Waiting is how many acquires are in progress right now.
	Waiting int64
	// Acquires counts the acquires that ended, Failed those of them that
	// ended without a connection (the caller's deadline passed, or the
	// database could not be reached).
	Acquires, Failed int64
	// WaitTotal and WaitMax are the total and the longest time an acquire
	// took, failed ones included.
	WaitTotal, WaitMax time.Duration
	// WaitBuckets counts the acquires by how long they took, cumulatively
	// (like a Prometheus histogram): bucket i counts those that took at most
	// WaitBuckets[i].UpTo. Acquires beyond the last bucket are in Acquires only.
	WaitBuckets []PoolWaitBucket
}

// PoolWaitBucket is one bucket of PoolStats.WaitBuckets.
type PoolWaitBucket struct {
	UpTo  time.Duration
	Count int64
}
