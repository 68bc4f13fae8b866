package flowbench

import (
	"math/rand/v2"
	"slices"

	"github.com/rampart-edge/rampart/flowtable"
)

// OpKind is what an operation does to its key.
type OpKind uint8

const (
	Get    OpKind = iota // read the key's value
	Update               // add one to the value of a present key
	Insert               // add an absent key
	Delete               // remove a present key
)

// Op carries its key inline: a stream is read sequentially, so the key
// costs no cache miss of its own.
type Op struct {
	Key  flowtable.FlowKey
	Kind OpKind
}

// Sim knows which keys the stores hold, and writes operation streams that
// keep it true.
type Sim struct {
	keys  []flowtable.FlowKey
	live  []uint32 // indexes into keys of the keys the stores hold
	spare []uint32 // and of those they do not
	seed  uint64
	n     uint64 // stream sets written so far: seeds the next
}

// NewSim starts with keys[:live] held and the rest spare (see Universe).
// seed seeds the operation streams; the keys are only read.
func NewSim(keys []flowtable.FlowKey, live int, seed uint64) *Sim {
	s := &Sim{keys: keys, live: make([]uint32, live), spare: make([]uint32, len(keys)-live), seed: seed}
	for i := range s.live {
		s.live[i] = uint32(i)
	}
	for i := range s.spare {
		s.spare[i] = uint32(live + i)
	}
	return s
}

// Live is how many keys the stores hold.
func (s *Sim) Live() int { return len(s.live) }

// LiveKeys is a copy of the keys the stores hold: what to prefill a new
// store with.
func (s *Sim) LiveKeys() []flowtable.FlowKey {
	out := make([]flowtable.FlowKey, len(s.live))
	for i, k := range s.live {
		out[i] = s.keys[k]
	}
	return out
}

// Streams writes g streams of ops operations in all (reusing buf), the
// mixed workload (45 % Get, 45 % Update, 5 % Insert, 5 % Delete) or the
// read-only one (all Get), and moves the simulation to the state the
// stores will be in once they ran them. Worker w owns the w-th part of the
// live and spare keys, so streams never touch a key together and the
// result does not depend on how the goroutines interleave.
func (s *Sim) Streams(g, ops int, mixed bool, buf []Op) ([][]Op, []Op) {
	buf = slices.Grow(buf[:0], ops)[:ops]
	out := make([][]Op, g)
	var live, spare []uint32
	off := 0
	for w := range g {
		n := ops / g
		if w < ops%g {
			n++
		}
		stream := buf[off : off+n : off+n]
		off += n
		myLive := slices.Clone(s.live[w*len(s.live)/g : (w+1)*len(s.live)/g])
		mySpare := slices.Clone(s.spare[w*len(s.spare)/g : (w+1)*len(s.spare)/g])
		r := rand.New(rand.NewPCG(s.seed, s.n<<8|uint64(w)))
		for i := range stream {
			kind := Get
			if mixed {
				switch p := r.IntN(100); {
				case p < 45:
				case p < 90:
					kind = Update
				case p < 95:
					kind = Insert
				default:
					kind = Delete
				}
			}
			if kind == Insert && len(mySpare) == 0 {
				kind = Delete
			}
			if kind != Insert && len(myLive) == 0 {
				kind = Insert
			}
			var k uint32
			switch kind {
			case Insert:
				j := r.IntN(len(mySpare))
				k = mySpare[j]
				mySpare[j] = mySpare[len(mySpare)-1]
				mySpare = mySpare[:len(mySpare)-1]
				myLive = append(myLive, k)
			case Delete:
				j := r.IntN(len(myLive))
				k = myLive[j]
				myLive[j] = myLive[len(myLive)-1]
				myLive = myLive[:len(myLive)-1]
				mySpare = append(mySpare, k)
			default:
				k = myLive[r.IntN(len(myLive))]
			}
			stream[i] = Op{Key: s.keys[k], Kind: kind}
		}
		out[w] = stream
		live = append(live, myLive...)
		spare = append(spare, mySpare...)
	}
	s.live, s.spare = live, spare
	s.n++
	return out, buf
}
