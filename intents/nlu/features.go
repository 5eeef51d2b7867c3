package nlu

import (
	"math"
	"sync"
	"unicode"
)

// Feature namespaces: every kind of feature hashes from its own seed, so a
// word and a character n-gram with the same letters land in different buckets.
const (
	nsWord uint64 = iota + 1
	nsBigram
	nsChar
)

// charBlock marks a bucket id as belonging to the character block (the top
// bit is free because buckets have at most 24 bits).
const charBlock = 1 << 31

// Boundary runes around an utterance, for the first and last word bigrams.
const (
	startRune = '\x02'
	endRune   = '\x03'
)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashStart(ns uint64) uint64 { return (fnvOffset ^ ns) * fnvPrime }

func hashRune(h uint64, r rune) uint64 { return (h ^ uint64(r)) * fnvPrime }

// bucketOf finalizes a hash (the murmur3 mixer, so the top bits are well
// spread) and keeps its top bits.
func bucketOf(h uint64, bits uint) uint32 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h >> (64 - bits))
}

// featureConfig is the part of the model that decides how text becomes features.
type featureConfig struct {
	Bits       uint8   // hash buckets: 1 << Bits
	MinN, MaxN uint8   // character n-gram lengths, within words padded by spaces
	WordWeight float32 // share of the word block in the squared norm
}

// key is the index of a bucket id in the column table: the character block
// has its own half, so a word and an n-gram in the same bucket stay apart.
func (fc featureConfig) key(id uint32) uint32 {
	return id&^charBlock | (id>>31)<<fc.Bits
}

// scratch holds the buffers of one vectorization; pooled so that
// classification does not allocate.
type scratch struct {
	runes  []rune
	pad    []rune
	toks   [][2]int32
	ids    []uint32
	uniq   []uint32
	tf     []int32
	vec    []entry
	slots  []int32
	scores []float32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// entry is one non-zero of a sparse vector.
type entry struct {
	col int32
	val float32
}

// normalize lower-cases s into runes, one space between tokens. Tokens are
// runs of letters and digits; apostrophes inside words are dropped (so
// "what's" and "whats" are the same word) and everything else separates.
func (s *scratch) normalize(text string) {
	s.runes, s.toks = s.runes[:0], s.toks[:0]
	start := int32(-1)
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if start < 0 {
				if len(s.runes) > 0 {
					s.runes = append(s.runes, ' ')
				}
				start = int32(len(s.runes))
			}
			s.runes = append(s.runes, unicode.ToLower(r))
		case r == '\'' || r == '\u2019':
			// inside a word: skip; elsewhere: nothing to do either
		default:
			if start >= 0 {
				s.toks = append(s.toks, [2]int32{start, int32(len(s.runes))})
				start = -1
			}
		}
	}
	if start >= 0 {
		s.toks = append(s.toks, [2]int32{start, int32(len(s.runes))})
	}
}

// buckets fills s.ids with the hashed features of the normalized text: word
// unigrams and bigrams (with start and end markers) and character n-grams of
// each word padded with spaces, one id per occurrence, in text order.
func (s *scratch) buckets(fc featureConfig) {
	s.ids = s.ids[:0]
	bits := uint(fc.Bits)
	prev := hashRune(hashStart(nsBigram), startRune)
	for _, t := range s.toks {
		word := s.runes[t[0]:t[1]]
		h := hashStart(nsWord)
		for _, r := range word {
			h = hashRune(h, r)
		}
		s.ids = append(s.ids, bucketOf(h, bits))
		b := hashRune(prev, ' ')
		for _, r := range word {
			b = hashRune(b, r)
		}
		s.ids = append(s.ids, bucketOf(b, bits))
		prev = hashStart(nsBigram)
		for _, r := range word {
			prev = hashRune(prev, r)
		}
		// Character n-grams of " word ": from each start, one hash grows
		// rune by rune and is taken at every length from MinN to MaxN.
		s.pad = append(append(append(s.pad[:0], ' '), word...), ' ')
		minN, maxN := int(fc.MinN), int(fc.MaxN)
		if len(s.pad) < minN {
			// A word shorter than the smallest n-gram is one n-gram.
			c := hashStart(nsChar)
			for _, r := range s.pad {
				c = hashRune(c, r)
			}
			s.ids = append(s.ids, bucketOf(c, bits)|charBlock)
			continue
		}
		for i := 0; i+minN <= len(s.pad); i++ {
			c := hashStart(nsChar)
			end := min(i+maxN, len(s.pad))
			for j, r := range s.pad[i:end] {
				c = hashRune(c, r)
				if j+1 >= minN {
					s.ids = append(s.ids, bucketOf(c, bits)|charBlock)
				}
			}
		}
	}
	if len(s.toks) > 0 {
		s.ids = append(s.ids, bucketOf(hashRune(hashRune(prev, ' '), endRune), bits))
	}
}

// count folds repeated ids of s.ids into s.uniq with their counts, keeping
// the order of first occurrence. A small open-addressing set on the stack
// does it in one pass, faster than sorting.
func (s *scratch) count() {
	s.uniq, s.tf = s.uniq[:0], s.tf[:0]
	var set [512]int16 // index into uniq + 1
	if len(s.ids) > len(set)/2 {
		s.countLarge()
		return
	}
	for _, id := range s.ids {
		i := (id * 0x9e3779b1) >> (32 - 9)
		for {
			k := set[i]
			if k == 0 {
				s.uniq = append(s.uniq, id)
				s.tf = append(s.tf, 1)
				set[i] = int16(len(s.uniq))
				break
			}
			if s.uniq[k-1] == id {
				s.tf[k-1]++
				break
			}
			i = (i + 1) & uint32(len(set)-1)
		}
	}
}

// countLarge is count for long texts.
func (s *scratch) countLarge() {
	seen := make(map[uint32]int, len(s.ids))
	for _, id := range s.ids {
		if k, ok := seen[id]; ok {
			s.tf[k]++
			continue
		}
		seen[id] = len(s.uniq)
		s.uniq = append(s.uniq, id)
		s.tf = append(s.tf, 1)
	}
}

// vectorizer turns bucket ids into a TF-IDF vector over the model's columns.
type vectorizer struct {
	fc      featureConfig
	keys    []uint32  // by column: its key, see featureConfig.key
	idf     []float32 // by column
	idfUnkn float32   // weight of a bucket never seen in training; counts in the norm only
	table   []slot    // open addressing on keys
	shift   uint8     // 32 - log2(len(table))
}

// slot is one column in the lookup table, with everything classification
// needs about it in one place, so that each feature of a message costs one
// cache miss before its weights.
type slot struct {
	key    uint32 // key + 1; 0 marks an empty slot
	col    int32
	idf    float32
	scale  float32 // of the column's int8 weights
	lo, hi uint32  // the column's weights: w[lo:hi]
}

// index builds the lookup table from keys and idf, with at most half of the
// slots in use.
func (v *vectorizer) index() {
	size := 16
	for size < 2*len(v.keys) {
		size *= 2
	}
	v.table = make([]slot, size)
	v.shift = uint8(32 - bits(size))
	for col, key := range v.keys {
		i := v.home(key)
		for v.table[i].key != 0 {
			i = (i + 1) & uint32(len(v.table)-1)
		}
		v.table[i] = slot{key: key + 1, col: int32(col), idf: v.idf[col]}
	}
}

func bits(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

func (v *vectorizer) home(key uint32) uint32 { return (key * 0x9e3779b1) >> v.shift }

// lookup returns the slot of key, or -1.
func (v *vectorizer) lookup(key uint32) int32 {
	mask := uint32(len(v.table) - 1)
	for i := v.home(key); ; i = (i + 1) & mask {
		switch v.table[i].key {
		case key + 1:
			return int32(i)
		case 0:
			return -1
		}
	}
}

// vectorize fills s.vec (and s.slots, the table slot of each entry) with the
// L2-normalized, block-weighted TF-IDF vector of text: sublinear term
// frequency (1 + ln tf), each block (words, characters) normalized on its
// own and weighted so that the whole has unit norm. Buckets the model never
// saw count towards the norms, so text made of unknown words gets a short
// vector and low scores.
func (v *vectorizer) vectorize(s *scratch, text string) {
	s.normalize(text)
	s.buckets(v.fc)
	s.count()
	s.vec, s.slots = s.vec[:0], s.slots[:0]
	var norm [2]float64
	for i, id := range s.uniq {
		tf := float32(1)
		if s.tf[i] > 1 {
			tf = 1 + float32(math.Log(float64(s.tf[i])))
		}
		block := id >> 31
		at := v.lookup(v.fc.key(id))
		if at < 0 {
			w := tf * v.idfUnkn
			norm[block] += float64(w * w)
			continue
		}
		sl := &v.table[at]
		w := tf * sl.idf
		norm[block] += float64(w * w)
		// The block rides in the top bit of the column until scaling.
		s.vec = append(s.vec, entry{col: sl.col | int32(block<<31), val: w})
		s.slots = append(s.slots, at)
	}
	var scale [2]float32
	ww := float64(v.fc.WordWeight)
	switch {
	case norm[0] > 0 && norm[1] > 0:
		scale[0] = float32(math.Sqrt(ww / norm[0]))
		scale[1] = float32(math.Sqrt((1 - ww) / norm[1]))
	case norm[0] > 0:
		scale[0] = float32(1 / math.Sqrt(norm[0]))
	case norm[1] > 0:
		// One block only (e.g. digits): it takes the whole norm.
		scale[1] = float32(1 / math.Sqrt(norm[1]))
	}
	for k := range s.vec {
		e := &s.vec[k]
		if e.col < 0 {
			e.col &^= -1 << 31
			e.val *= scale[1]
		} else {
			e.val *= scale[0]
		}
	}
}
