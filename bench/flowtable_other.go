//go:build !linux

package bench

import "errors"

// Elsewhere the flow table benchmark runs its workers unpinned and reports
// no resident-set figures.
func flowWorkerCPUs(g int) []int {
	out := make([]int, g)
	for w := range out {
		out[w] = -1
	}
	return out
}

func pinFlowWorker(int) (func(), error) { return func() {}, nil }

func rssBytes() (int64, error) { return 0, errors.ErrUnsupported }
