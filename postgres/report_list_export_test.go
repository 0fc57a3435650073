package postgres

// ReportListSQL names the report list statements, for plan checks.
var ReportListSQL = map[string]string{
	"by arrival": reportListSQL[0].byArrival, "by arrival in window": reportListSQL[0].byArrivalInWindow, "by deadline": reportListSQL[0].byDeadline, "counts": reportListSQL[0].counts,
	"mine by arrival": reportListSQL[1].byArrival, "mine by deadline": reportListSQL[1].byDeadline, "mine counts": reportListSQL[1].counts,
	"by arrival in scope": reportListSQL[0].byArrivalInScope, "counts in scope window": reportListSQL[0].countsInScopeWindow,
	"counts from sums": reportCountsFromSumsSQL,
}
