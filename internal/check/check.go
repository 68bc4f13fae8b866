// Package check collects configuration problems with the field path they
// belong to, so that the profile loader can point at the file, line and
// column of each one.
//
// A Problems value is built by one goroutine during validation; it owns no
// other state and never touches the machine.
package check

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one invalid field. Path is dotted YAML keys from the profile
// root, e.g. "xdp.rate_limit.normal.packets_per_second".
type Problem struct {
	Path string
	Msg  string
}

func (p *Problem) Error() string { return p.Path + ": " + p.Msg }

// Problems accumulates every problem found, not only the first.
type Problems struct {
	prefix string
	list   *[]error
}

// New starts an empty collection rooted at prefix ("" for the profile root).
func New(prefix string) Problems {
	return Problems{prefix: prefix, list: new([]error)}
}

// In returns a view that records problems under a nested field.
func (p Problems) In(field string) Problems {
	return Problems{prefix: join(p.prefix, field), list: p.list}
}

// Addf records a problem with field (relative to this view).
func (p Problems) Addf(field, format string, args ...any) {
	*p.list = append(*p.list, &Problem{Path: join(p.prefix, field), Msg: fmt.Sprintf(format, args...)})
}

// Range records a problem when v is outside lo..hi.
func Range[T int | int64 | uint16 | uint32 | uint64](p Problems, field string, v, lo, hi T) {
	if v < lo || v > hi {
		p.Addf(field, "must be in %d..%d, got %d", lo, hi, v)
	}
}

// Merge records a nested validation's error (joined Problems or others).
func (p Problems) Merge(field string, err error) {
	if err == nil {
		return
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			p.Merge(field, e)
		}
		return
	}
	var pr *Problem
	if errors.As(err, &pr) {
		*p.list = append(*p.list, &Problem{Path: join(join(p.prefix, field), pr.Path), Msg: pr.Msg})
		return
	}
	*p.list = append(*p.list, &Problem{Path: join(p.prefix, field), Msg: err.Error()})
}

// Err returns every problem joined, or nil.
func (p Problems) Err() error { return errors.Join(*p.list...) }

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

var yamlPathPart = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// YAMLNode returns the node of a YAML document at a Problem's dotted path
// ("xdp.services[0].addrs"), or its deepest existing ancestor when the
// field is absent from the file, so that a problem can be reported at a
// line and column.
func YAMLNode(root *yaml.Node, path string) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, m := range yamlPathPart.FindAllStringSubmatch(path, -1) {
		var next *yaml.Node
		switch {
		case m[1] != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == m[1] {
					next = n.Content[i+1]
					break
				}
			}
		case m[2] != "" && n.Kind == yaml.SequenceNode:
			if i, _ := strconv.Atoi(m[2]); i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}
