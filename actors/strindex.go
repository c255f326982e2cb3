package actors

import "hash/maphash"

// strIndex numbers distinct strings densely (0, 1, 2, ...), in the order they are added: an
// open-addressing table of 8-byte slots (32 bits of hash and the number), smaller and quicker to
// probe than a map[string]int for the per-key lookups of a combine and a reduce, which are
// their hot path. Keys are compared in full; the 32 bits only skip most comparisons.
type strIndex struct {
	seed  maphash.Seed
	slots []uint64 // hash<<32 | number+1; 0 is empty
	keys  []string // by number
}

func newStrIndex(hint int) *strIndex {
	t := &strIndex{seed: maphash.MakeSeed()}
	t.grow(hint)
	return t
}

func (t *strIndex) len() int { return len(t.keys) }

// key returns the string numbered i.
func (t *strIndex) key(i int) string { return t.keys[i] }

// reset forgets every key, keeping the table's room.
func (t *strIndex) reset() {
	if len(t.keys) == 0 {
		return
	}
	clear(t.slots)
	clear(t.keys)
	t.keys = t.keys[:0]
}

// find returns the number of key, or -1; and its hash, for add.
func (t *strIndex) find(key string) (int, uint64) {
	h := maphash.String(t.seed, key)
	tag := uint32(h >> 32)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return -1, h
		}
		if uint32(s>>32) == tag {
			if n := int(uint32(s)) - 1; t.keys[n] == key {
				return n, h
			}
		}
	}
}

// findBytes is find for a key given as bytes, without making it a string.
func (t *strIndex) findBytes(key []byte) (int, uint64) {
	h := t.hashBytes(key)
	return t.findHashed(key, h), h
}

// add numbers key, which find said is absent (returning its hash h), and returns its number.
func (t *strIndex) add(key string, h uint64) int {
	n := len(t.keys)
	t.keys = append(t.keys, key)
	if 4*len(t.keys) > 3*len(t.slots) {
		t.grow(2 * len(t.keys))
		return n
	}
	t.place(h, n)
	return n
}

func (t *strIndex) place(h uint64, n int) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = h&^(1<<32-1) | uint64(n+1)
}

// grow makes room for at least n keys and places the keys there again.
func (t *strIndex) grow(n int) {
	size := 16
	for 3*size < 4*n+4 {
		size *= 2
	}
	t.slots = make([]uint64, size)
	for i, k := range t.keys {
		t.place(maphash.String(t.seed, k), i)
	}
}

// hashBytes is the hash find and findBytes use.
func (t *strIndex) hashBytes(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

// findHashed is findBytes for a key whose hash h is known.
func (t *strIndex) findHashed(key []byte, h uint64) int {
	tag := uint32(h >> 32)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if uint32(s>>32) == tag {
			if n := int(uint32(s)) - 1; t.keys[n] == string(key) {
				return n
			}
		}
	}
}
