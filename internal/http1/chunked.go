package http1

// maxChunkLine bounds a chunk-size line, extensions included, without its
// CRLF. Extensions are validated and dropped; 1 KiB leaves room for any
// legitimate use while keeping a loop's buffer small.
const maxChunkLine = 1 << 10

// maxChunkOverhead bounds framing bytes not paid for by data, so that a
// sender cannot make us parse megabytes of size lines and extensions for a
// few bytes of body. Each chunk earns 16 + 2*size bytes of allowance; the
// accounting is net/http's, so the two never disagree on it.
const maxChunkOverhead = 16 << 10

// maxChunkSize keeps sizes far from int64 overflow (2^60 bytes is 1 EiB).
const maxChunkSize = 1 << 60

type chunkState uint8

const (
	stateSize chunkState = iota
	stateData
	stateDataCRLF
	stateTrailer
	stateDone
)

// ChunkedDecoder decodes one chunked body incrementally (RFC 9112 section
// 7.1). Its zero value is not ready: call Reset before each body. It can
// live by value inside a per-connection struct.
//
// It has two ways in, which share one state machine and so accept, reject
// and consume exactly the same bytes: Decode copies the chunk data out, for
// a caller that needs the body itself; Scan only checks the framing, for a
// proxy that forwards the body verbatim. Either way, the trailer section is
// held back (not consumed) until its final empty line has arrived, so that
// once done it lies whole in the last input, where Trailers finds it.
type ChunkedDecoder struct {
	limits       Limits
	state        chunkState
	remaining    int64 // data bytes left in the current chunk
	overhead     int64 // framing bytes beyond the allowance, see maxChunkOverhead
	trailerBytes int   // trailer section bytes checked so far, final CRLF included
	trailers     int   // trailer fields checked so far
	// held is how many bytes past the last consumed one are trailer lines
	// already checked: the next call resumes after them, so trailers that
	// trickle in are parsed once, not once per call.
	held int
	// trailerStart and trailerEnd locate the trailer fields in the input
	// of the call that returned done.
	trailerStart, trailerEnd int
}

// Reset prepares d for a new body whose trailer section is bounded by
// l.MaxHeaderBytes and l.MaxHeaders.
func (d *ChunkedDecoder) Reset(l Limits) {
	*d = ChunkedDecoder{limits: l}
}

// Decode copies chunk data from in to out and returns how many bytes of in
// it consumed and of out it produced. done is set once the last chunk,
// trailers and final CRLF have been consumed; in[consumed:] then belongs to
// the next message.
//
// Decode stops early, with a nil error, when out is full or when in ends
// inside a size line, a chunk's CRLF or the trailer section: keep
// in[consumed:], append more bytes and call again; the bytes kept must be
// given back unchanged at the start of in, since d remembers how far it
// checked them. in must have room for a whole size line (1 KiB + 2) and a
// whole trailer section (Limits.MaxHeaderBytes), or what does not fit is
// rejected as too long. Errors are *Error: the body is malformed and the
// connection must be closed. Decode never allocates.
func (d *ChunkedDecoder) Decode(in, out []byte) (consumed, produced int, done bool, err error) {
	return d.run(in, out, true)
}

// Scan checks the chunked framing at the start of in exactly as Decode
// does (same limits, same errors, same trailer rules), copying nothing,
// and returns how many bytes of in it consumed. A proxy forwards
// in[:consumed] unchanged after every call, chunk sizes, extensions and
// trailers included: everything it forwards has been checked, and what it
// holds back (a partial size line, the trailer section until it is whole)
// is exactly what has not. done, and the rules for calling again and for
// errors, are Decode's: Scan(in) returns what Decode(in, out) would for any
// out at least as long as in. Scan never allocates.
func (d *ChunkedDecoder) Scan(in []byte) (consumed int, done bool, err error) {
	consumed, _, done, err = d.run(in, nil, false)
	return consumed, done, err
}

// Trailers locates the trailer section of a body that the last call to
// Decode or Scan finished (returned done): in[start:end] of that call's in
// holds the trailer field lines, each with its CRLF, already checked, and
// in[end:end+2] the final CRLF. start == end when there are none. A proxy
// forwarding verbatim needs nothing from it; one that filters trailers
// forwards in[:start], its own field lines, then CRLF. Before done, both
// are 0.
func (d *ChunkedDecoder) Trailers() (start, end int) {
	return d.trailerStart, d.trailerEnd
}

// run is Decode when copyData is set and Scan otherwise; out is unused by
// Scan, whose data is bounded only by in.
func (d *ChunkedDecoder) run(in, out []byte, copyData bool) (consumed, produced int, done bool, err error) {
	for {
		switch d.state {
		case stateSize:
			line, next, err := nextLine(in, consumed, maxChunkLine, errChunkLineTooLong)
			if err == ErrIncomplete {
				return consumed, produced, false, nil
			}
			if err != nil {
				return consumed, produced, false, err
			}
			size, err := parseChunkSize(line)
			if err != nil {
				return consumed, produced, false, err
			}
			d.overhead += int64(len(line)) + 2 - 16 - 2*size
			d.overhead = max(d.overhead, 0)
			if d.overhead > maxChunkOverhead {
				return consumed, produced, false, errChunkOverhead
			}
			consumed = next
			if size == 0 {
				d.state = stateTrailer
			} else {
				d.remaining = size
				d.state = stateData
			}
		case stateData:
			n := min(int64(len(in)-consumed), d.remaining)
			if copyData {
				n = min(n, int64(len(out)-produced))
				copy(out[produced:], in[consumed:consumed+int(n)])
				produced += int(n)
			}
			if n == 0 {
				return consumed, produced, false, nil
			}
			consumed += int(n)
			d.remaining -= n
			if d.remaining == 0 {
				d.state = stateDataCRLF
			}
		case stateDataCRLF:
			rest := in[consumed:]
			if len(rest) > 0 && rest[0] != '\r' || len(rest) > 1 && rest[1] != '\n' {
				return consumed, produced, false, errChunkDataCRLF
			}
			if len(rest) < 2 {
				return consumed, produced, false, nil
			}
			consumed += 2
			d.state = stateSize
		case stateTrailer:
			// Trailer lines are checked as they arrive but consumed only
			// with the final CRLF, so the section is whole in one input.
			pos := consumed + d.held
			budget := d.limits.MaxHeaderBytes - d.trailerBytes
			line, next, err := nextLine(in, pos, budget-2, errTrailersTooLarge)
			if err == ErrIncomplete {
				return consumed, produced, false, nil
			}
			if err != nil {
				return consumed, produced, false, err
			}
			d.trailerBytes += next - pos
			if len(line) == 0 {
				d.trailerStart, d.trailerEnd = consumed, pos
				d.held = 0
				consumed = next
				d.state = stateDone
				continue
			}
			if d.trailers >= d.limits.MaxHeaders {
				return consumed, produced, false, errTooManyTrailers
			}
			name, _, err := parseFieldLine(line)
			if err != nil {
				return consumed, produced, false, err
			}
			if forbiddenTrailer(name) {
				return consumed, produced, false, errForbiddenTrailer
			}
			d.trailers++
			d.held += next - pos
		case stateDone:
			return consumed, produced, true, nil
		}
	}
}

// forbiddenTrailer reports fields that frame or route a message; a trailer
// carrying one is an attempt to change what was already decided.
func forbiddenTrailer(name []byte) bool {
	return equalFold(name, "content-length") || equalFold(name, "transfer-encoding") ||
		equalFold(name, "host") || equalFold(name, "trailer") || equalFold(name, "connection")
}

// parseChunkSize parses 1*HEXDIG followed by chunk extensions:
// *( ";" token [ "=" ( token / quoted-string ) ] ), with no whitespace.
func parseChunkSize(line []byte) (int64, error) {
	var size int64
	i := 0
	for i < len(line) && classes[line[i]]&classHex != 0 {
		// Check before shifting: a 16th significant digit would carry
		// into the sign bit and make the size negative. More than 16
		// digits, even leading zeros, is refused too: net/http and other
		// readers refuse it, and a size the next hop reads differently is
		// a framing disagreement.
		if size >= maxChunkSize>>4 || i == 16 {
			return 0, errChunkTooLarge
		}
		size = size<<4 | unhex(line[i])
		i++
	}
	if i == 0 {
		return 0, lineError(line, errChunkSize)
	}
	ext := line[i:]
	for len(ext) > 0 {
		if ext[0] != ';' {
			return 0, lineError(line, errChunkSize)
		}
		ext = ext[1:]
		j := 0
		for j < len(ext) && classes[ext[j]]&classToken != 0 {
			j++
		}
		if j == 0 {
			return 0, errChunkExt
		}
		ext = ext[j:]
		if len(ext) == 0 || ext[0] != '=' {
			continue
		}
		ext = ext[1:]
		if len(ext) > 0 && ext[0] == '"' {
			n, ok := quotedString(ext)
			if !ok {
				return 0, lineError(line, errChunkExt)
			}
			ext = ext[n:]
			continue
		}
		j = 0
		for j < len(ext) && classes[ext[j]]&classToken != 0 {
			j++
		}
		if j == 0 {
			return 0, lineError(line, errChunkExt)
		}
		ext = ext[j:]
	}
	return size, nil
}

// quotedString returns the length of the quoted-string at the start of b.
func quotedString(b []byte) (int, bool) {
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i == len(b) || b[i] != '\t' && (b[i] < 0x20 || b[i] == 0x7f) {
				return 0, false
			}
		case c != '\t' && (c < 0x20 || c == 0x7f):
			return 0, false
		}
	}
	return 0, false
}
