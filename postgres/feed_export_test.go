package postgres

// FeedSQL names the live feed's statements, for plan checks.
var FeedSQL = map[string]string{
	"number": numberSQL, "marks": marksSQL, "old report events": feedOldReportsSQL, "report events": feedReportsSQL,
	"boundary changes": feedChangesSQL,
}

// SetNumberBatch sets how many rows one numbering takes at most.
func (f *Feed) SetNumberBatch(n int) { f.batch = n }
