package profiles

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

// TestGolden parses each testdata profile and compares the normalised spec
// (or the exact error text) with its .golden file.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata profiles: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			spec, err := Parse(file, data)
			if err != nil {
				got = []byte("error:\n" + err.Error() + "\n")
			} else {
				got, err = yaml.Marshal(spec)
				if err != nil {
					t.Fatal(err)
				}
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./profiles -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s:\ngot:\n%s\nwant:\n%s", file, golden, got, want)
			}
		})
	}
}

func TestEmbeddedProfilesAreValid(t *testing.T) {
	if len(Names()) == 0 {
		t.Fatal("no embedded profiles")
	}
	for _, name := range Names() {
		spec, err := Load(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if spec.Name != name {
			t.Errorf("profile file %s.yaml says name %q", name, spec.Name)
		}
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		arg     string
		wantErr string
	}{
		{name: "embedded", arg: DefaultName},
		{name: "file", arg: "testdata/minimal.yaml"},
		{name: "unknown name", arg: "no-such-profile", wantErr: `no profile named "no-such-profile"`},
		{name: "missing file", arg: "testdata/absent.yaml", wantErr: "read profile"},
		{name: "invalid file", arg: "testdata/bad-address.yaml", wantErr: "testdata/bad-address.yaml:5:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.arg)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Load(%q): %v", tc.arg, err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Load(%q) error = %v, want it to contain %q", tc.arg, err, tc.wantErr)
			}
		})
	}
}

func TestParseRejectsSecondDocument(t *testing.T) {
	data, err := os.ReadFile("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte("---\nname: other\n")...)
	if _, err := Parse("two.yaml", data); err == nil || !strings.Contains(err.Error(), "one YAML document") {
		t.Fatalf("error = %v, want a one-document error", err)
	}
}

// FuzzParse: Parse never panics, returns a spec xor an error, and every
// error names the file and a position.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "edge-default.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: x\nxdp: [1, 2]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse("fuzz.yaml", data)
		if (spec == nil) == (err == nil) {
			t.Fatalf("spec %v and error %v: want exactly one", spec, err)
		}
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml:") {
					t.Fatalf("error line without position: %q", line)
				}
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("accepted spec does not validate: %v", err)
		}
	})
}
