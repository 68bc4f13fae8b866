package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/internal/admin"
	"github.com/rampart-edge/rampart/xdp"
)

// defaultAdmin is where `rampart run` listens unless told otherwise.
const defaultAdmin = "127.0.0.1:9180"

// tableFlags are the flags of flows and visitors.
type tableFlags struct {
	admin    string
	src      string
	zone     uint32
	minScore uint8
	limit    int
	top      int
	by       string
	asJSON   bool
	bpf      bool
}

func (f *tableFlags) register(cmd *cobra.Command, orders string, zone bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.admin, "admin", defaultAdmin, "the daemon's admin listener: HOST:PORT or unix:/path")
	fl.StringVar(&f.src, "src", "", "only sources inside this prefix or address (IPv4 or IPv6)")
	if zone {
		fl.Uint32Var(&f.zone, "zone", 0, "only flows of this zone")
	}
	fl.Uint8Var(&f.minScore, "min-score", 0, "only entries with a threat score of at least this (0..100)")
	fl.IntVar(&f.limit, "limit", 0, fmt.Sprintf("at most this many rows (default %d; 0: all)", admin.DefaultLimit))
	fl.IntVar(&f.top, "top", 0, "the N highest by --by, highest first")
	fl.StringVar(&f.by, "by", "", "what --top ranks by: "+orders)
	fl.BoolVar(&f.asJSON, "json", false, "print JSON lines, one object per entry, as they come")
}

// query turns the flags into the endpoint's query string, sending only
// what was given so that the daemon's defaults apply.
func (f *tableFlags) query(cmd *cobra.Command) (url.Values, error) {
	if err := f.checkCommon(cmd); err != nil {
		return nil, err
	}
	q := url.Values{}
	if f.src != "" {
		p, err := parsePrefix(f.src)
		if err != nil {
			return nil, fmt.Errorf("--src: %w", err)
		}
		q.Set("src", p.String())
	}
	if cmd.Flags().Changed("zone") {
		q.Set("zone", strconv.FormatUint(uint64(f.zone), 10))
	}
	if f.minScore > 0 {
		q.Set("min_score", strconv.Itoa(int(f.minScore)))
	}
	if cmd.Flags().Changed("limit") {
		q.Set("limit", strconv.Itoa(f.limit))
	}
	if f.top > 0 {
		q.Set("top", strconv.Itoa(f.top))
		if f.by != "" {
			q.Set("by", f.by)
		}
	}
	return q, nil
}

func (f *tableFlags) checkCommon(cmd *cobra.Command) error {
	switch {
	case f.limit < 0:
		return fmt.Errorf("invalid --limit %d: want a count of rows, or 0 for all", f.limit)
	case f.top < 0 || (cmd.Flags().Changed("top") && f.top == 0):
		return fmt.Errorf("invalid --top %d: want a count of 1 or more", f.top)
	case f.by != "" && f.top == 0:
		return fmt.Errorf("--by %s needs --top N", f.by)
	case f.minScore > 100:
		return fmt.Errorf("invalid --min-score %d: scores are 0..100", f.minScore)
	}
	return nil
}

func (a *app) newFlowsCmd() *cobra.Command {
	var f tableFlags
	cmd := &cobra.Command{
		Use:   "flows [--src PREFIX] [--zone Z] [--min-score N] [--top N --by bytes|requests|score] [--limit N] [--json] [--bpf]",
		Short: "Show the daemon's flow table, or with --bpf the XDP rate-limit and block state",
		Long: `flows reads the running daemon's flow table through its admin listener
(--admin, default ` + defaultAdmin + `): one row per connection, filtered by
source prefix, zone and minimum score, at most --limit rows (default
` + strconv.Itoa(admin.DefaultLimit) + `, 0 for all), or the --top N by bytes, requests or score.
The table is read while the daemon keeps writing it: each row is
consistent, the whole is not a frozen snapshot.

--bpf reads the XDP filter's pinned maps instead, so it works while the
daemon is down: the per-source rate-limit state (last seen, packets,
bytes, dropped, and the blocklist prefix covering the source if any) and
the blocklist. There --top ranks by packets (default), bytes or dropped.`,
		Example: `  rampartctl flows --top 20 --by bytes
  rampartctl flows --src 198.51.100.0/24 --min-score 50
  rampartctl flows --limit 0 --json | jq -c 'select(.verdict == "block")'
  rampartctl flows --admin unix:/run/rampart/admin.sock
  rampartctl flows --bpf --top 10 --by dropped`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.bpf {
				return a.bpfFlows(cmd, &f)
			}
			if f.by != "" {
				if _, err := flowOrder(f.by); err != nil {
					return err
				}
			}
			q, err := f.query(cmd)
			if err != nil {
				return err
			}
			now := time.Now()
			var t *table
			if !f.asJSON {
				t = newTable(cmd.OutOrStdout(), []column{{"SRC", 21}, {"DST", 21}, {"PROTO", 0}, {"ZONE", 0}, {"LOOP", 0},
					{"AGE", 6}, {"IDLE", 6}, {"BYTES_IN", 9}, {"BYTES_OUT", 9}, {"REQ_IN", 0}, {"REQ_OUT", 0},
					{"VERDICT", 10}, {"SCORE", 0}})
			}
			rows, hdr, err := fetchLines(cmd, f.admin, "/flows", q, func(line []byte) error {
				if t == nil {
					_, err := cmd.OutOrStdout().Write(line)
					return err
				}
				var r admin.FlowRecord
				if err := json.Unmarshal(line, &r); err != nil {
					return fmt.Errorf("daemon sent a malformed flow: %w", err)
				}
				t.row(r.Src, r.Dst, protoName(r.Proto), strconv.FormatUint(uint64(r.Zone), 10),
					strconv.Itoa(int(r.Loop)), since(now, r.Created), since(now, r.LastSeen),
					strconv.FormatUint(r.BytesIn, 10), strconv.FormatUint(r.BytesOut, 10),
					strconv.FormatUint(uint64(r.RequestsIn), 10), strconv.FormatUint(uint64(r.RequestsOut), 10),
					r.Verdict, strconv.Itoa(int(r.Score)))
				return t.err
			})
			if err != nil {
				return err
			}
			return summarise(cmd, t, rows, hdr, "flow", f.top > 0)
		},
	}
	f.register(cmd, "bytes (default), requests or score; with --bpf packets (default), bytes or dropped", true)
	cmd.Flags().BoolVar(&f.bpf, "bpf", false, "read the XDP filter's pinned rate-limit and block maps instead of the daemon")
	return cmd
}

// flowOrder checks --by for the daemon's flow table.
func flowOrder(by string) (string, error) {
	switch by {
	case "bytes", "requests", "score":
		return by, nil
	}
	return "", fmt.Errorf("invalid --by %q: flows rank by bytes, requests or score (with --bpf: packets, bytes or dropped)", by)
}

// adminClient makes a client for the admin listener and the base URL of
// its endpoints.
func adminClient(addr string) (*http.Client, string, error) {
	dial := (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	base := "http://" + addr
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return nil, "", fmt.Errorf("invalid --admin %q: want unix:/path/to/socket", addr)
		}
		base = "http://rampart-admin"
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "unix", path)
		}
	} else if _, _, err := net.SplitHostPort(addr); err != nil || strings.Contains(addr, "/") {
		return nil, "", fmt.Errorf("invalid --admin %q: want HOST:PORT or unix:/path", addr)
	}
	// No overall timeout: a full dump streams for as long as it takes.
	// The headers come before the daemon walks its table, though.
	tr := &http.Transport{DialContext: dial, ResponseHeaderTimeout: 10 * time.Second, DisableCompression: true}
	return &http.Client{Transport: tr}, base, nil
}

// fetchLines GETs path from the admin listener and calls each with every
// line of the answer (the newline included) as it arrives. It returns how
// many lines came and the answer's headers.
func fetchLines(cmd *cobra.Command, addr, path string, q url.Values, each func(line []byte) error) (int, http.Header, error) {
	client, base, err := adminClient(addr)
	if err != nil {
		return 0, nil, err
	}
	defer client.CloseIdleConnections()
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return 0, nil, fmt.Errorf("cannot reach the daemon's admin listener at %s: is rampart running? (--admin says where it listens; flows --bpf reads the XDP maps without it): %w", addr, op.Err)
		}
		return 0, nil, fmt.Errorf("ask the daemon at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, nil, fmt.Errorf("the daemon refused %s (%s): %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && err == nil {
			if err := each(line); err != nil {
				return n, resp.Header, err
			}
			n++
		}
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return n, resp.Header, fmt.Errorf("the answer from %s ended inside a line", addr)
			}
			return n, resp.Header, nil
		}
		if err != nil {
			if cmd.Context().Err() != nil {
				return n, resp.Header, nil // interrupted: what was printed stands
			}
			return n, resp.Header, fmt.Errorf("read the answer from %s: %w", addr, err)
		}
	}
}

// summarise ends a listing: in table form, a count line saying whether
// the limit cut it; with --json, that hint on stderr only when cut.
func summarise(cmd *cobra.Command, t *table, rows int, hdr http.Header, noun string, ranked bool) error {
	total, _ := strconv.Atoi(hdr.Get(admin.HeaderTableLen))
	limit, _ := strconv.Atoi(hdr.Get(admin.HeaderLimit))
	cut := !ranked && limit > 0 && rows == limit && total > rows
	hint := ""
	if cut {
		hint = "; the limit cut the listing (--limit N for more, 0 for all)"
	}
	if t == nil {
		if cut {
			fmt.Fprintf(cmd.ErrOrStderr(), "%d %ss of about %d%s\n", rows, noun, total, hint)
		}
		return nil
	}
	if err := t.flush(); err != nil {
		return err
	}
	if rows == 0 {
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "no %ss match (%d in the table)\n", noun, total)
		return err
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%d %s%s shown, of about %d in the table%s\n", rows, noun, plural(rows), total, hint)
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// since is how long ago t was, rounded for reading: "-" for the zero
// time (never set).
func since(now, t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// column is a table heading and the width it starts at.
type column struct {
	name  string
	width int
}

// table prints aligned rows as they come, in blocks, without holding a
// whole dump: each block widens the columns to its widest cell, and
// widths never shrink, so most dumps align throughout.
type table struct {
	w       io.Writer
	cols    []column
	rows    [][]string
	printed bool
	err     error
}

const tableBlock = 1024

func newTable(w io.Writer, cols []column) *table {
	for i := range cols {
		cols[i].width = max(cols[i].width, len(cols[i].name))
	}
	return &table{w: w, cols: cols}
}

func (t *table) row(cells ...string) {
	t.rows = append(t.rows, cells)
	if len(t.rows) >= tableBlock {
		t.flush()
	}
}

func (t *table) flush() error {
	if t.err != nil {
		return t.err
	}
	for _, r := range t.rows {
		for i, c := range r {
			t.cols[i].width = max(t.cols[i].width, len(c))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i == len(cells)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", t.cols[i].width-len(c)+2))
		}
		b.WriteByte('\n')
	}
	if !t.printed && len(t.rows) > 0 {
		names := make([]string, len(t.cols))
		for i, c := range t.cols {
			names[i] = c.name
		}
		line(names)
		t.printed = true
	}
	for _, r := range t.rows {
		line(r)
	}
	t.rows = t.rows[:0]
	_, t.err = io.WriteString(t.w, b.String())
	return t.err
}

// overlaps reports whether a filter (invalid: none) selects prefix p.
func overlaps(filter, p netip.Prefix) bool {
	return !filter.IsValid() || filter.Overlaps(p)
}

// bpfFlows prints the XDP filter's per-source state from its pinned
// maps: the rate-limit LRU and the blocklist.
func (a *app) bpfFlows(cmd *cobra.Command, f *tableFlags) error {
	if err := f.checkCommon(cmd); err != nil {
		return err
	}
	if cmd.Flags().Changed("zone") || f.minScore > 0 {
		return errors.New("--zone and --min-score need the daemon's flow table: the XDP maps have no zones or scores")
	}
	if cmd.Flags().Changed("admin") {
		return errors.New("--bpf reads the pinned maps, not the daemon: drop --admin (--iface or --pin-dir pick the filter)")
	}
	by := f.by
	if by == "" {
		by = "packets"
	}
	var metric func(s *xdp.RateSource) uint64
	switch by {
	case "packets":
		metric = func(s *xdp.RateSource) uint64 { return s.Packets }
	case "bytes":
		metric = func(s *xdp.RateSource) uint64 { return s.Bytes }
	case "dropped":
		metric = func(s *xdp.RateSource) uint64 { return s.Dropped }
	default:
		return fmt.Errorf("invalid --by %q: with --bpf, flows rank by packets, bytes or dropped", by)
	}
	var src netip.Prefix
	if f.src != "" {
		p, err := parsePrefix(f.src)
		if err != nil {
			return fmt.Errorf("--src: %w", err)
		}
		src = p
	}
	limit := admin.DefaultLimit
	if cmd.Flags().Changed("limit") {
		limit = f.limit
	}
	if f.top > 0 {
		limit = f.top
		if cmd.Flags().Changed("limit") && f.limit > 0 {
			limit = min(f.top, f.limit)
		}
	}

	m, iface, err := a.openMaps()
	if err != nil {
		return err
	}
	defer m.Close()
	blocked, err := m.Entries(xdp.Blocklist)
	if err != nil {
		return err
	}
	now := time.Now()
	cover := newCoverIndex(blocked, now)

	// Ranked: a bounded selection of the best; unranked: the first
	// matches, in the map's order.
	sel := &topSources{n: limit, better: func(a, b *xdp.RateSource) bool {
		if ma, mb := metric(a), metric(b); ma != mb {
			return ma > mb
		}
		return a.Prefix.Addr().Less(b.Prefix.Addr())
	}}
	var sources []xdp.RateSource
	total := 0
	err = m.RateSources(func(s xdp.RateSource) bool {
		total++
		if !overlaps(src, s.Prefix) {
			return true
		}
		if f.top > 0 {
			sel.add(s)
			return true
		}
		if limit == 0 || len(sources) < limit {
			sources = append(sources, s)
		}
		return true
	})
	if err != nil {
		return err
	}
	if f.top > 0 {
		sources = sel.sorted()
	}
	var blocks []xdp.ListEntry
	for _, e := range blocked {
		if overlaps(src, e.Prefix) && (limit == 0 || len(blocks) < limit) {
			blocks = append(blocks, e)
		}
	}

	w := cmd.OutOrStdout()
	if f.asJSON {
		enc := json.NewEncoder(w)
		for _, s := range sources {
			by, blocked := cover.find(s.Prefix)
			if err := enc.Encode(newRateSourceJSON(s, by, blocked)); err != nil {
				return err
			}
		}
		for _, e := range blocks {
			if err := enc.Encode(newBlockJSON(e)); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(w, "rate_limits on %s: %d of %d tracked sources", iface, len(sources), total)
	if f.top > 0 {
		fmt.Fprintf(w, ", top by %s", by)
	}
	fmt.Fprintln(w)
	if len(sources) > 0 {
		t := newTable(w, []column{{"PREFIX", 18}, {"IDLE", 6}, {"PACKETS", 9}, {"BYTES", 10}, {"DROPPED", 8}, {"BLOCKED_BY", 0}})
		for _, s := range sources {
			by := "-"
			if p, ok := cover.find(s.Prefix); ok {
				by = p.String()
			}
			t.row(s.Prefix.String(), since(now, s.LastSeen), strconv.FormatUint(s.Packets, 10),
				strconv.FormatUint(s.Bytes, 10), strconv.FormatUint(s.Dropped, 10), by)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nblocklist on %s: %d of %d prefixes\n", iface, len(blocks), len(blocked))
	if len(blocks) == 0 {
		return nil
	}
	return writeEntries(w, blocks, now)
}

// rateSourceJSON is one line of flows --bpf --json for a rate-limited
// source.
type rateSourceJSON struct {
	Table     string    `json:"table"` // "rate_limits"
	Prefix    string    `json:"prefix"`
	LastSeen  time.Time `json:"last_seen"`
	Packets   uint64    `json:"packets"`
	Bytes     uint64    `json:"bytes"`
	Dropped   uint64    `json:"dropped"`
	BlockedBy *string   `json:"blocked_by"` // the blocklist prefix covering the source, or null
}

func newRateSourceJSON(s xdp.RateSource, by netip.Prefix, blocked bool) rateSourceJSON {
	j := rateSourceJSON{Table: "rate_limits", Prefix: s.Prefix.String(), LastSeen: s.LastSeen.UTC().Round(time.Millisecond),
		Packets: s.Packets, Bytes: s.Bytes, Dropped: s.Dropped}
	if blocked {
		p := by.String()
		j.BlockedBy = &p
	}
	return j
}

// blockJSON is one line of flows --bpf --json for a blocklist prefix.
type blockJSON struct {
	Table   string     `json:"table"` // "blocklist"
	Prefix  string     `json:"prefix"`
	Added   time.Time  `json:"added"`
	Expires *time.Time `json:"expires"` // null: never
}

func newBlockJSON(e xdp.ListEntry) blockJSON {
	j := blockJSON{Table: "blocklist", Prefix: e.Prefix.String(), Added: e.Added.UTC().Round(time.Millisecond)}
	if !e.Expires.IsZero() {
		exp := e.Expires.UTC().Round(time.Millisecond)
		j.Expires = &exp
	}
	return j
}

// coverIndex finds the blocklist prefix that covers a source: the
// unexpired prefixes by length, so that a lookup is one map probe per
// length in use rather than a scan of the list.
type coverIndex struct {
	byBits map[int]map[netip.Prefix]bool
	bits   []int // lengths in use, longest first
}

func newCoverIndex(entries []xdp.ListEntry, now time.Time) *coverIndex {
	c := &coverIndex{byBits: map[int]map[netip.Prefix]bool{}}
	for _, e := range entries {
		if !e.Expires.IsZero() && !e.Expires.After(now) {
			continue // expired, waiting for the sweeper: no longer blocks
		}
		b := e.Prefix.Bits()
		if c.byBits[b] == nil {
			c.byBits[b] = map[netip.Prefix]bool{}
			c.bits = append(c.bits, b)
		}
		c.byBits[b][e.Prefix] = true
	}
	slices.Sort(c.bits)
	slices.Reverse(c.bits)
	return c
}

// find returns the longest listed prefix that contains all of p.
func (c *coverIndex) find(p netip.Prefix) (netip.Prefix, bool) {
	for _, b := range c.bits {
		if b > p.Bits() || (b > 32 && p.Addr().Is4()) {
			continue
		}
		q, err := p.Addr().Prefix(b)
		if err == nil && c.byBits[b][q] {
			return q, true
		}
	}
	return netip.Prefix{}, false
}

// topSources keeps the n best sources seen (n > 0), as a min-heap whose
// root is the worst kept.
type topSources struct {
	n      int
	better func(a, b *xdp.RateSource) bool
	h      []xdp.RateSource
}

func (t *topSources) add(s xdp.RateSource) {
	if len(t.h) < t.n {
		t.h = append(t.h, s)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if !t.better(&t.h[p], &t.h[i]) {
				break
			}
			t.h[i], t.h[p] = t.h[p], t.h[i]
			i = p
		}
		return
	}
	if !t.better(&s, &t.h[0]) {
		return
	}
	t.h[0] = s
	t.down(0, len(t.h))
}

func (t *topSources) down(i, n int) {
	for {
		worst, l := i, 2*i+1
		if l < n && t.better(&t.h[worst], &t.h[l]) {
			worst = l
		}
		if r := l + 1; r < n && t.better(&t.h[worst], &t.h[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		t.h[i], t.h[worst] = t.h[worst], t.h[i]
		i = worst
	}
}

// sorted returns the kept sources, best first.
func (t *topSources) sorted() []xdp.RateSource {
	for end := len(t.h) - 1; end > 0; end-- {
		t.h[0], t.h[end] = t.h[end], t.h[0]
		t.down(0, end)
	}
	return t.h
}
