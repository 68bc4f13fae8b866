// Package identity is the stage that says whose request this is: the zone
// (customer site) its Host names, and later the user. A request for a host
// no zone claims is answered here with the profile's unknown_host response,
// so it can never reach another customer's origin.
package identity

import (
	"sync/atomic"

	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/stages/zone"
)

// Stage routes exchanges to zones. The table is swapped whole on reload;
// an exchange sees either the old table or the new one.
type Stage struct {
	current atomic.Pointer[routes]
}

type routes struct {
	table         *zone.Table
	unknownStatus int
	unknownBody   []byte
}

// New returns a stage serving t.
func New(t *zone.Table) *Stage {
	s := &Stage{}
	s.Swap(t)
	return s
}

// Swap publishes a new table.
func (s *Stage) Swap(t *zone.Table) {
	u := t.UnknownHost()
	s.current.Store(&routes{table: t, unknownStatus: u.Status, unknownBody: []byte(u.Body)})
}

// Table is the table in force.
func (s *Stage) Table() *zone.Table { return s.current.Load().table }

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return "identity" }

// Serve implements pipeline.Stage.
func (s *Stage) Serve(x *pipeline.Exchange) pipeline.Action {
	r := s.current.Load()
	z := r.table.Lookup(x.Request.Host)
	if z == nil {
		x.Status, x.Body = r.unknownStatus, r.unknownBody
		return pipeline.Respond
	}
	x.Zone = z
	return pipeline.Continue
}
