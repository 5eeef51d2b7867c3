package nlu

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// FormatVersion is the version of the serialized model. [UnmarshalModel]
// reads this version and the ones listed below; it rejects others with
// [ErrFormat], so a stored model from another release is retrained rather
// than misread.
//
//   - 1: the first release.
//   - 2: adds the score of "none of them" and the calibration's counts
//     (see [Calibration]); a model of version 1 has neither and is
//     [Model.Outdated].
const FormatVersion = 2

// oldestFormat is the oldest format version UnmarshalModel reads.
const oldestFormat = 1

// ErrFormat means serialized bytes are not a model of a format version this
// release reads.
var ErrFormat = errors.New("nlu: not a model of a known format version")

var magic = [4]byte{'P', 'N', 'L', 'U'}

// MarshalBinary serializes the model: a small header, the vocabulary, the
// weights, the calibration and the slot definitions. The same model always
// gives the same bytes.
func (m *Model) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(3*len(m.w) + len(m.idf)*16 + 4096)
	w := writer{&b}
	b.Write(magic[:])
	w.u32(FormatVersion)
	b.WriteByte(m.fc.Bits)
	b.WriteByte(m.fc.MinN)
	b.WriteByte(m.fc.MaxN)
	w.f32(m.fc.WordWeight)
	w.f32(m.idfUnkn)
	w.u32(uint32(len(m.keys)))
	for col, key := range m.keys {
		w.u32(key)
		w.f32(m.idf[col])
	}
	w.u32(uint32(len(m.classes)))
	for _, c := range m.classes {
		w.str(c)
	}
	w.u32(uint32(int32(m.oos)))
	for _, x := range m.bias {
		w.f32(x)
	}
	w.f32s(m.rowScale)
	w.u32(uint32(len(m.w)))
	for f := range len(m.idf) {
		w.u32(m.rows[f+1] - m.rows[f])
	}
	for _, c := range m.cls {
		w.b.Write(binary.LittleEndian.AppendUint16(nil, c))
	}
	b.Write(int8Bytes(m.w))
	w.f32(m.temperature)
	w.f32(m.tuned)
	w.f32(m.none)
	w.u32(uint32(m.calHeldOut))
	w.u32(uint32(m.calStandIns))
	w.u32(uint32(math.Float64bits(m.threshold)))
	w.u32(uint32(math.Float64bits(m.threshold) >> 32))
	slots, err := json.Marshal(m.slotData())
	if err != nil {
		return nil, fmt.Errorf("nlu: encode slots: %w", err)
	}
	w.str(string(slots))
	return b.Bytes(), nil
}

// UnmarshalModel decodes a model serialized by [Model.MarshalBinary].
func UnmarshalModel(raw []byte) (*Model, error) {
	r := reader{raw: raw}
	if len(raw) < 8 || !bytes.Equal(raw[:4], magic[:]) {
		return nil, ErrFormat
	}
	r.raw = raw[4:]
	version := r.u32()
	if version < oldestFormat || version > FormatVersion {
		return nil, ErrFormat
	}
	m := &Model{version: int(version)}
	m.fc.Bits, m.fc.MinN, m.fc.MaxN = r.byte(), r.byte(), r.byte()
	m.fc.WordWeight = r.f32()
	m.idfUnkn = r.f32()
	if m.fc.Bits == 0 || m.fc.Bits > 22 || m.fc.MinN == 0 || m.fc.MaxN < m.fc.MinN {
		return nil, fmt.Errorf("%w: bad feature settings", ErrFormat)
	}
	nf := int(r.u32())
	if r.err != nil || nf > len(r.raw)/8 {
		return nil, fmt.Errorf("%w: truncated", ErrFormat)
	}
	m.keys = make([]uint32, nf)
	m.idf = make([]float32, nf)
	seen := make(map[uint32]bool, nf)
	for col := range nf {
		key := r.u32()
		if key >= 2<<m.fc.Bits || seen[key] {
			return nil, fmt.Errorf("%w: bad vocabulary", ErrFormat)
		}
		seen[key] = true
		m.keys[col] = key
		m.idf[col] = r.f32()
	}
	nc := int(r.u32())
	if r.err != nil || nc == 0 || nc > len(r.raw) {
		return nil, fmt.Errorf("%w: bad classes", ErrFormat)
	}
	names := make([]string, nc)
	for i := range names {
		names[i] = r.str()
	}
	m.setClasses(names)
	if oos := int(int32(r.u32())); oos != m.oos {
		return nil, fmt.Errorf("%w: bad out-of-scope class", ErrFormat)
	}
	if r.err != nil || len(r.raw) < (nc+2*nf)*4 {
		return nil, fmt.Errorf("%w: truncated", ErrFormat)
	}
	m.bias = r.f32s(nc)
	m.rowScale = r.f32s(nf)
	nnz := int(r.u32())
	if r.err != nil || nnz > len(r.raw)/3 {
		return nil, fmt.Errorf("%w: truncated", ErrFormat)
	}
	m.rows = make([]uint32, nf+1)
	for f := range nf {
		n := r.u32()
		if n > uint32(nc) {
			return nil, fmt.Errorf("%w: bad weights", ErrFormat)
		}
		m.rows[f+1] = m.rows[f] + n
	}
	if m.rows[nf] != uint32(nnz) {
		return nil, fmt.Errorf("%w: bad weights", ErrFormat)
	}
	m.cls = make([]uint16, nnz)
	for i, b := 0, r.take(2*nnz); i < nnz; i++ {
		m.cls[i] = binary.LittleEndian.Uint16(b[2*i:])
		if int(m.cls[i]) >= nc {
			return nil, fmt.Errorf("%w: bad weights", ErrFormat)
		}
	}
	m.w = make([]int8, nnz)
	for i, b := range r.take(nnz) {
		m.w[i] = int8(b)
	}
	m.temperature, m.tuned = r.f32(), r.f32()
	if version >= 2 {
		m.none = r.f32()
		m.calHeldOut, m.calStandIns = int(r.u32()), int(r.u32())
	}
	lo, hi := r.u32(), r.u32()
	m.threshold = math.Float64frombits(uint64(hi)<<32 | uint64(lo))
	if !(m.threshold >= 0 && m.threshold <= 1) {
		return nil, fmt.Errorf("%w: bad threshold", ErrFormat)
	}
	slots := r.str()
	if r.err != nil {
		return nil, fmt.Errorf("%w: truncated", ErrFormat)
	}
	if !(m.temperature > 0) || math.IsInf(float64(m.temperature), 0) {
		return nil, fmt.Errorf("%w: bad temperature", ErrFormat)
	}
	if math.IsNaN(float64(m.none)) || math.IsInf(float64(m.none), 0) || !(m.tuned >= 0 && m.tuned <= 1) {
		return nil, fmt.Errorf("%w: bad calibration", ErrFormat)
	}
	var d Data
	if err := json.Unmarshal([]byte(slots), &d); err != nil {
		return nil, fmt.Errorf("%w: slots: %w", ErrFormat, err)
	}
	m.slots = newSlotExtractor(d)
	m.index()
	m.link()
	return m, nil
}

// memory estimates the bytes the model holds in memory.
func (m *Model) memory() int {
	return len(m.table)*24 + len(m.keys)*16 + len(m.w)*3 + len(m.bias)*4 + m.slots.size()
}

// slotData is the part of the training data the slot extractor needs.
func (m *Model) slotData() Data {
	if m.slots == nil {
		return Data{}
	}
	return m.slots.def
}

type writer struct{ b *bytes.Buffer }

func (w writer) u32(x uint32) { w.b.Write(binary.LittleEndian.AppendUint32(nil, x)) }
func (w writer) f32(x float32) {
	w.u32(math.Float32bits(x))
}
func (w writer) f32s(xs []float32) {
	buf := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	w.b.Write(buf)
}
func (w writer) str(s string) {
	w.u32(uint32(len(s)))
	w.b.WriteString(s)
}

type reader struct {
	raw []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n > len(r.raw) || n < 0 {
		r.err = ErrFormat
		return make([]byte, max(n, 0))
	}
	b := r.raw[:n]
	r.raw = r.raw[n:]
	return b
}

func (r *reader) byte() byte   { return r.take(1)[0] }
func (r *reader) u32() uint32  { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *reader) f32() float32 { return math.Float32frombits(r.u32()) }
func (r *reader) str() string {
	n := int(r.u32())
	if n > len(r.raw) {
		r.err = ErrFormat
		return ""
	}
	return string(r.take(n))
}
func (r *reader) f32s(n int) []float32 {
	b := r.take(4 * n)
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func int8Bytes(xs []int8) []byte {
	out := make([]byte, len(xs))
	for i, x := range xs {
		out[i] = byte(x)
	}
	return out
}
