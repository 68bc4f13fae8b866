package check

import (
	"errors"
	"strings"
	"testing"
)

func TestProblems(t *testing.T) {
	p := New("")
	x := p.In("xdp")
	x.Addf("fragments", "bad %d", 1)
	Range(x.In("capacity"), "services", uint32(3), 16, 1024)
	Range(x, "ok", 5, 1, 10)
	x.Merge("services[0]", errors.Join(&Problem{Path: "addrs", Msg: "empty"}, errors.New("plain")))
	err := p.Err()
	want := []string{
		"xdp.fragments: bad 1",
		"xdp.capacity.services: must be in 16..1024, got 3",
		"xdp.services[0].addrs: empty",
		"xdp.services[0]: plain",
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if New("a").Err() != nil {
		t.Fatal("no problems must give a nil error")
	}
}
