// Package admin serves read access to the daemon's flow tables on its
// admin listener (localhost TCP or a unix socket): GET /flows and
// GET /visitors stream a table as JSON lines, filtered, limited or ranked
// by the query string (see ParseFlowQuery and ParseVisitorQuery). It also
// defines the wire records (FlowRecord, VisitorRecord) that rampartctl
// decodes, so that both ends share one definition.
//
// It lives apart from flowtable so that the tables stay a data structure
// with no I/O, and so that later admin endpoints have a home.
//
// State: a handler holds only its table and options; requests may be
// served concurrently from any goroutine. A dump walks the live table
// while writers keep writing (flowtable.Table.Range): it is weakly
// consistent, each line a consistent copy of one entry. A dump must never
// hold more than Options.MaxTop entries in memory: unranked dumps are
// streamed as the table is walked.
package admin
