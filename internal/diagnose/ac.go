package diagnose

// keySet finds which of a fixed set of lowercase keys occur in a line, in
// one pass over it: an Aho-Corasick automaton compiled to a DFA over byte
// classes (the bytes the keys use, plus one class for every other byte).
// Checking each rule's keys with bytes.Contains would read each line a
// hundred times.
type keySet struct {
	class   [256]uint8
	classes int
	// delta maps state*classes + class to the next state's row
	// (state*classes), shifted left once, the low bit set when keys end at
	// that state: the hot loop then needs no multiplication and reads out
	// only where a key ends.
	delta []int32
	out   [][]uint16 // the keys that end at a state (fail links merged)
}

func newKeySet(keys []string) *keySet {
	k := &keySet{classes: 1}
	for _, key := range keys {
		for i := 0; i < len(key); i++ {
			if c := key[i]; k.class[c] == 0 {
				k.class[c] = uint8(k.classes)
				k.classes++
			}
		}
	}
	// Upper-case letters read as their lower-case class.
	for c := 'A'; c <= 'Z'; c++ {
		k.class[c] = k.class[c+'a'-'A']
	}
	goTo := [][]int32{make([]int32, k.classes)}
	for i := range goTo[0] {
		goTo[0][i] = -1
	}
	k.out = [][]uint16{nil}
	for id, key := range keys {
		s := int32(0)
		for i := 0; i < len(key); i++ {
			c := k.class[key[i]]
			if goTo[s][c] < 0 {
				row := make([]int32, k.classes)
				for j := range row {
					row[j] = -1
				}
				goTo = append(goTo, row)
				k.out = append(k.out, nil)
				goTo[s][c] = int32(len(goTo) - 1)
			}
			s = goTo[s][c]
		}
		k.out[s] = append(k.out[s], uint16(id))
	}
	// Breadth first: each state's failure is the longest proper suffix
	// that is a state; missing transitions follow it (making a DFA).
	fail := make([]int32, len(goTo))
	k.delta = make([]int32, len(goTo)*k.classes)
	queue := []int32{}
	for c := 0; c < k.classes; c++ {
		if t := goTo[0][c]; t >= 0 {
			k.delta[c] = t
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		k.out[s] = append(k.out[s], k.out[fail[s]]...)
		for c := 0; c < k.classes; c++ {
			t := goTo[s][c]
			if t < 0 {
				k.delta[int(s)*k.classes+c] = k.delta[int(fail[s])*k.classes+c]
				continue
			}
			fail[t] = k.delta[int(fail[s])*k.classes+c]
			k.delta[int(s)*k.classes+c] = t
			queue = append(queue, t)
		}
	}
	// Encode: rows pre-multiplied and the output bit.
	for i, t := range k.delta {
		e := t * int32(k.classes) << 1
		if len(k.out[t]) > 0 {
			e |= 1
		}
		k.delta[i] = e
	}
	return k
}

// match sets found[id] for every key that occurs in line (ASCII case
// ignored); found must be as long as the key list and all false.
func (k *keySet) match(line []byte, found []bool, hit func(id uint16)) {
	row := int32(0)
	for _, b := range line {
		e := k.delta[row+int32(k.class[b])]
		row = e >> 1
		if e&1 != 0 {
			for _, id := range k.out[int(row)/k.classes] {
				if !found[id] {
					found[id] = true
					hit(id)
				}
			}
		}
	}
}
