package admin

import (
	"strconv"
	"time"

	"github.com/rampart-edge/rampart/flowtable"
)

// FlowRecord is one line of GET /flows. Times are UTC; src and dst are
// "ip:port" ("[v6]:port" for IPv6).
type FlowRecord struct {
	Src         string    `json:"src"`
	Dst         string    `json:"dst"`
	Proto       uint8     `json:"proto"` // IP protocol number: 6 TCP, 17 UDP
	Zone        uint32    `json:"zone"`
	Loop        uint16    `json:"loop"`
	Created     time.Time `json:"created"`
	LastSeen    time.Time `json:"last_seen"`
	BytesIn     uint64    `json:"bytes_in"`
	BytesOut    uint64    `json:"bytes_out"`
	RequestsIn  uint32    `json:"requests_in"`
	RequestsOut uint32    `json:"requests_out"`
	Verdict     string    `json:"verdict"`
	Score       uint8     `json:"score"`
}

// NewFlowRecord converts a table entry.
func NewFlowRecord(k *flowtable.FlowKey, v *flowtable.Flow) FlowRecord {
	return FlowRecord{
		Src: k.Source().String(), Dst: k.Destination().String(), Proto: k.Proto,
		Zone: v.Zone, Loop: v.Loop,
		Created: time.Unix(0, v.Created).UTC(), LastSeen: time.Unix(0, v.LastSeen).UTC(),
		BytesIn: v.BytesIn, BytesOut: v.BytesOut, RequestsIn: v.RequestsIn, RequestsOut: v.RequestsOut,
		Verdict: v.Verdict.String(), Score: v.Score,
	}
}

// appendFlowJSON appends the entry as json.Marshal(NewFlowRecord(k, v))
// would, plus a newline, without reflection or allocation: a full dump
// is millions of lines.
func appendFlowJSON(b []byte, k *flowtable.FlowKey, v *flowtable.Flow) []byte {
	b = append(b, `{"src":"`...)
	b = k.Source().AppendTo(b)
	b = append(b, `","dst":"`...)
	b = k.Destination().AppendTo(b)
	b = append(b, `","proto":`...)
	b = strconv.AppendUint(b, uint64(k.Proto), 10)
	b = append(b, `,"zone":`...)
	b = strconv.AppendUint(b, uint64(v.Zone), 10)
	b = append(b, `,"loop":`...)
	b = strconv.AppendUint(b, uint64(v.Loop), 10)
	b = append(b, `,"created":`...)
	b = appendTime(b, v.Created)
	b = append(b, `,"last_seen":`...)
	b = appendTime(b, v.LastSeen)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendUint(b, v.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendUint(b, v.BytesOut, 10)
	b = append(b, `,"requests_in":`...)
	b = strconv.AppendUint(b, uint64(v.RequestsIn), 10)
	b = append(b, `,"requests_out":`...)
	b = strconv.AppendUint(b, uint64(v.RequestsOut), 10)
	b = append(b, `,"verdict":"`...)
	b = append(b, v.Verdict.String()...) // a fixed lowercase name: nothing to escape
	b = append(b, `","score":`...)
	b = strconv.AppendUint(b, uint64(v.Score), 10)
	return append(b, "}\n"...)
}

// VisitorRecord is one line of GET /visitors. Prefix is the visitor's
// IPv4 address (/32) or IPv6 /64. Times are UTC.
type VisitorRecord struct {
	Prefix    string    `json:"prefix"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Rate is requests per second over the last flowtable.RateWindows
	// seconds; RequestsWindow is the requests counted in them.
	Rate           float64 `json:"rate"`
	RequestsWindow uint64  `json:"requests_window"`
	Errors         uint32  `json:"errors"`
	Blocks         uint32  `json:"blocks"`
	Connections    uint32  `json:"connections"`
	Score          uint8   `json:"score"`
	Verdict        string  `json:"verdict"`
}

// NewVisitorRecord converts a table entry, with rates taken at now.
func NewVisitorRecord(k *flowtable.VisitorKey, v *flowtable.Visitor, now time.Time) VisitorRecord {
	return VisitorRecord{
		Prefix:    k.Prefix().String(),
		FirstSeen: time.Unix(0, v.FirstSeen).UTC(), LastSeen: time.Unix(0, v.LastSeen).UTC(),
		Rate: v.Rate(now.Unix()), RequestsWindow: flowtable.WindowRequests(v, now.Unix()),
		Errors: v.Errors, Blocks: v.Blocks, Connections: v.Connections,
		Score: v.Score, Verdict: v.Verdict.String(),
	}
}

// appendVisitorJSON appends the entry as json.Marshal(NewVisitorRecord(k,
// v, at sec)) would, plus a newline.
func appendVisitorJSON(b []byte, k *flowtable.VisitorKey, v *flowtable.Visitor, sec int64) []byte {
	b = append(b, `{"prefix":"`...)
	b = k.Prefix().AppendTo(b)
	b = append(b, `","first_seen":`...)
	b = appendTime(b, v.FirstSeen)
	b = append(b, `,"last_seen":`...)
	b = appendTime(b, v.LastSeen)
	b = append(b, `,"rate":`...)
	// Rate is a count over RateWindows (a power of two): exact in 'f'
	// form, which is also what encoding/json writes in this range.
	b = strconv.AppendFloat(b, v.Rate(sec), 'f', -1, 64)
	b = append(b, `,"requests_window":`...)
	b = strconv.AppendUint(b, flowtable.WindowRequests(v, sec), 10)
	b = append(b, `,"errors":`...)
	b = strconv.AppendUint(b, uint64(v.Errors), 10)
	b = append(b, `,"blocks":`...)
	b = strconv.AppendUint(b, uint64(v.Blocks), 10)
	b = append(b, `,"connections":`...)
	b = strconv.AppendUint(b, uint64(v.Connections), 10)
	b = append(b, `,"score":`...)
	b = strconv.AppendUint(b, uint64(v.Score), 10)
	b = append(b, `,"verdict":"`...)
	b = append(b, v.Verdict.String()...)
	return append(b, "\"}\n"...)
}

// appendTime writes unix nanoseconds as a quoted RFC 3339 UTC time, as
// encoding/json writes a time.Time.
func appendTime(b []byte, ns int64) []byte {
	b = append(b, '"')
	b = time.Unix(0, ns).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
