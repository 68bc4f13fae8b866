package profiles

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/internal/check"
	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/stages/zone"
	"github.com/rampart-edge/rampart/xdp"
)

// DefaultName is the embedded profile `rampart` uses when none is given.
const DefaultName = "edge-default"

//go:embed *.yaml
var embedded embed.FS

// Spec is a whole profile.
type Spec struct {
	Name      string           `yaml:"name"`
	XDP       xdp.Config       `yaml:"xdp"`
	FlowTable flowtable.Config `yaml:"flowtable"`
	// Pipeline is the HTTP engine; without the section only the XDP
	// filter runs.
	Pipeline *pipeline.Config `yaml:"pipeline,omitempty"`
	// Zones (the zones and unknown_host keys) route hosts to origins.
	Zones zone.Config `yaml:",inline"`
}

// Validate returns every problem of the spec, each with its field path.
func (s *Spec) Validate() error {
	p := check.New("")
	if !regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`).MatchString(s.Name) {
		p.Addf("name", "must be 1-63 lowercase letters, digits or dashes, got %q", s.Name)
	}
	p.Merge("xdp", s.XDP.Validate())
	p.Merge("flowtable", s.FlowTable.Validate())
	if s.Pipeline != nil {
		p.Merge("pipeline", s.Pipeline.Validate())
	}
	p.Merge("", s.Zones.Validate())
	return p.Err()
}

// FieldError is one problem in a profile file, positioned at the YAML node
// it concerns.
type FieldError struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Path, e.Msg)
}

// Names lists the embedded profiles.
func Names() []string {
	entries, _ := embedded.ReadDir(".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(out)
	return out
}

// Source returns the text of an embedded profile, for tools that derive a
// profile from it (benchmarks, the demo).
func Source(name string) ([]byte, error) {
	data, err := embedded.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no embedded profile %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return data, nil
}

// Load reads a profile: an embedded name ("edge-default") or a file path.
func Load(nameOrPath string) (*Spec, error) {
	if data, err := embedded.ReadFile(nameOrPath + ".yaml"); err == nil {
		return Parse("profiles/"+nameOrPath+".yaml", data)
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(nameOrPath, "/.") {
			return nil, fmt.Errorf("no profile named %q (embedded: %s)", nameOrPath, strings.Join(Names(), ", "))
		}
		return nil, fmt.Errorf("read profile: %w", err)
	}
	return Parse(nameOrPath, data)
}

// Parse decodes and validates one profile. Errors are *FieldError values
// (joined when there are several) naming file, line, column and path.
func Parse(file string, data []byte) (*Spec, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, nil, err)
	}
	if len(root.Content) == 0 {
		return nil, &FieldError{File: file, Line: 1, Column: 1, Msg: "empty profile"}
	}
	var spec Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		return nil, yamlError(file, &root, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, &FieldError{File: file, Line: extra.Line, Column: extra.Column, Msg: "a profile is one YAML document"}
	}
	if spec.Pipeline != nil {
		*spec.Pipeline = spec.Pipeline.WithDefaults()
	}
	spec.Zones = spec.Zones.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, positioned(file, &root, err)
	}
	return &spec, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns yaml.v3's "line N: msg" errors into FieldErrors. Errors
// of text unmarshalers (addresses, prefixes) carry no line; they quote the
// offending value, which is then looked up in the document.
func yamlError(file string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []error
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			line, _ := strconv.Atoi(sm[1])
			out = append(out, &FieldError{File: file, Line: line, Column: 1, Msg: sm[2]})
			continue
		}
		line, col := 1, 1
		if n := quotedScalar(root, m); n != nil {
			line, col = n.Line, n.Column
		}
		out = append(out, &FieldError{File: file, Line: line, Column: col, Msg: m})
	}
	return errors.Join(out...)
}

// quotedScalar finds the first scalar whose value the message quotes.
func quotedScalar(n *yaml.Node, msg string) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Value != "" && strings.Contains(msg, strconv.Quote(n.Value)) {
		return n
	}
	for _, c := range n.Content {
		if found := quotedScalar(c, msg); found != nil {
			return found
		}
	}
	return nil
}

// positioned attaches the position of each problem's field.
func positioned(file string, root *yaml.Node, err error) error {
	var problems []error
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		problems = joined.Unwrap()
	} else {
		problems = []error{err}
	}
	var out []error
	for _, e := range problems {
		var p *check.Problem
		if !errors.As(e, &p) {
			out = append(out, &FieldError{File: file, Line: 1, Column: 1, Msg: e.Error()})
			continue
		}
		n := check.YAMLNode(root, p.Path)
		out = append(out, &FieldError{File: file, Line: n.Line, Column: n.Column, Path: p.Path, Msg: p.Msg})
	}
	return errors.Join(out...)
}

// Base is the profile name for messages ("edge-default" for a path too).
func Base(nameOrPath string) string {
	return strings.TrimSuffix(path.Base(nameOrPath), ".yaml")
}
