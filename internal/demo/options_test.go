package demo

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "defaults", opts: Options{}},
		{name: "flood turned off", opts: Options{SYNFlood: -1}},
		{name: "flood too big", opts: Options{Blocked: 20_000_000}, wantErr: "blocked: at most"},
		{name: "too many requests", opts: Options{Requests: 20_000}, wantErr: "requests: must be in"},
		{name: "duration too short", opts: Options{Duration: 100 * time.Millisecond}, wantErr: "duration: must be in"},
		{name: "timeout leaves no room", opts: Options{Duration: 30 * time.Second, Timeout: 31 * time.Second}, wantErr: "timeout: must leave"},
		{name: "every problem at once", opts: Options{Requests: -5, Duration: 2 * time.Minute}, wantErr: "requests: must be in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.withDefaults().validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestOptionsValidateJoinsProblems(t *testing.T) {
	err := Options{Requests: -5, Duration: 2 * time.Minute}.withDefaults().validate()
	if err == nil || !strings.Contains(err.Error(), "requests") || !strings.Contains(err.Error(), "duration") {
		t.Fatalf("validate = %v, want both the requests and the duration problems", err)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    int
		want time.Duration
	}{
		{name: "empty", in: nil, p: 50, want: 0},
		{name: "one", in: ms(7), p: 99, want: 7 * time.Millisecond},
		{name: "median of unsorted", in: ms(5, 1, 3, 2, 4), p: 50, want: 3 * time.Millisecond},
		{name: "p99 of 100 is the 99th", in: ms(seq(100)...), p: 99, want: 99 * time.Millisecond},
		{name: "p99 of 10 is the max", in: ms(seq(10)...), p: 99, want: 10 * time.Millisecond},
		{name: "p100 is the max", in: ms(3, 9, 1), p: 100, want: 9 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.in, tc.p); got != tc.want {
				t.Fatalf("percentile(%d) = %s, want %s", tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}
