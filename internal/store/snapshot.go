package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// The snapshot file. Version 1 is JSON:
//
//	{"format":"parley-store-snapshot","version":1,"saved_at":"...","keys":[
//	{"key":"k","type":"string","value":"v","expire_at_ms":1767225600000}
//	,{"key":"h","type":"hash","fields":[{"field":"f","value":"v"}]}
//	]}
//
// Every Redis string (keys, values, fields, members) is a JSON string when
// it is valid UTF-8 and {"base64":"..."} otherwise, so binary data survives.
// expire_at_ms is an absolute Unix time in milliseconds; absent means no
// expiry. Sorted-set scores are strings (strconv 'g' format, "+Inf"/"-Inf").
const (
	snapshotName    = "snapshot.json"
	snapshotFormat  = "parley-store-snapshot"
	snapshotVersion = 1
	// pipelineChunk bounds the commands in one pipeline of a snapshot.
	pipelineChunk = 512
)

type snapshotFile struct {
	Format  string      `json:"format"`
	Version int         `json:"version"`
	SavedAt time.Time   `json:"saved_at"`
	Keys    []keyRecord `json:"keys"`
}

// keyRecord is one key. Which value field is set depends on Type.
type keyRecord struct {
	Key      bstr          `json:"key"`
	Type     string        `json:"type"`
	ExpireAt int64         `json:"expire_at_ms,omitempty"`
	Value    *bstr         `json:"value,omitempty"`   // string
	Fields   []hashField   `json:"fields,omitempty"`  // hash
	Items    []bstr        `json:"items,omitempty"`   // list (in order), set
	Members  []zMember     `json:"members,omitempty"` // zset
	Entries  []streamEntry `json:"entries,omitempty"` // stream
	Groups   []streamGroup `json:"groups,omitempty"`  // stream consumer groups
}

type hashField struct {
	Field    bstr  `json:"field"`
	Value    bstr  `json:"value"`
	ExpireAt int64 `json:"expire_at_ms,omitempty"`
}

type zMember struct {
	Member bstr    `json:"member"`
	Score  string  `json:"score"`
	score  float64 // parsed Score, set by validate
}

type streamEntry struct {
	ID     string `json:"id"`
	Values []bstr `json:"values"` // field, value, field, value ...
}

type streamGroup struct {
	Name            bstr   `json:"name"`
	LastDeliveredID string `json:"last_delivered_id"`
	// OldestPendingID is the oldest entry delivered but not acknowledged.
	// Pending lists are not saved; the group restarts just before it, so
	// those entries are delivered again.
	OldestPendingID string `json:"oldest_pending_id,omitempty"`
}

// bstr is a binary-safe string in JSON: a JSON string when it is valid
// UTF-8, else {"base64": "..."}.
type bstr string

type base64Form struct {
	Base64 *string `json:"base64"`
}

// MarshalJSON implements [json.Marshaler].
func (b bstr) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep chat text readable: "<b>", not "\u003cb\u003e"
	var err error
	if utf8.ValidString(string(b)) {
		err = enc.Encode(string(b))
	} else {
		b64 := base64.StdEncoding.EncodeToString([]byte(b))
		err = enc.Encode(base64Form{Base64: &b64})
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err
}

// UnmarshalJSON implements [json.Unmarshaler].
func (b *bstr) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*b = bstr(s)
		return nil
	}
	var f base64Form
	if err := json.Unmarshal(data, &f); err != nil || f.Base64 == nil {
		return errors.New(`want a string or {"base64": "..."}`)
	}
	raw, err := base64.StdEncoding.DecodeString(*f.Base64)
	if err != nil {
		return fmt.Errorf("bad base64: %w", err)
	}
	*b = bstr(raw)
	return nil
}

// readSnapshot loads and checks the snapshot file. A missing file is no
// snapshot (nil, nil); anything unreadable is an error that says what to do.
func readSnapshot(file string) (*snapshotFile, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot of the embedded store: %w", err)
	}
	defer f.Close()
	snap, err := decodeSnapshot(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s cannot be loaded: %w; move the file away to start with an empty store, "+
			"or put back a good copy", file, err)
	}
	return snap, nil
}

// decodeSnapshot parses and validates a snapshot.
func decodeSnapshot(r io.Reader) (*snapshotFile, error) {
	dec := json.NewDecoder(r)
	var snap snapshotFile
	if err := dec.Decode(&snap); err != nil {
		return nil, fmt.Errorf("corrupt JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("corrupt JSON: data after the end of the snapshot")
	}
	if err := snap.validate(); err != nil {
		return nil, err
	}
	return &snap, nil
}

// validate checks everything restore relies on.
func (s *snapshotFile) validate() error {
	if s.Format != snapshotFormat {
		return fmt.Errorf("not a parley store snapshot (format %q)", s.Format)
	}
	if s.Version > snapshotVersion {
		return fmt.Errorf("written by a newer parley (snapshot version %d; this one reads up to %d)", s.Version, snapshotVersion)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("unknown snapshot version %d", s.Version)
	}
	seen := make(map[bstr]bool, len(s.Keys))
	for i := range s.Keys {
		r := &s.Keys[i]
		if seen[r.Key] {
			return fmt.Errorf("key %q appears twice", r.Key)
		}
		seen[r.Key] = true
		if err := r.validate(); err != nil {
			return fmt.Errorf("key %q: %w", r.Key, err)
		}
	}
	return nil
}

func (r *keyRecord) validate() error {
	if r.ExpireAt < 0 {
		return errors.New("negative expiry")
	}
	switch r.Type {
	case "string":
		if r.Value == nil {
			return errors.New("string without a value")
		}
	case "hash":
		if len(r.Fields) == 0 {
			return errors.New("hash without fields")
		}
		seen := make(map[bstr]bool, len(r.Fields))
		for _, f := range r.Fields {
			if seen[f.Field] {
				return fmt.Errorf("hash field %q appears twice", f.Field)
			}
			seen[f.Field] = true
			if f.ExpireAt < 0 {
				return errors.New("negative expiry")
			}
		}
	case "list", "set":
		if len(r.Items) == 0 {
			return fmt.Errorf("%s without items", r.Type)
		}
	case "zset":
		if len(r.Members) == 0 {
			return errors.New("sorted set without members")
		}
		for i := range r.Members {
			f, err := strconv.ParseFloat(r.Members[i].Score, 64)
			if err != nil || math.IsNaN(f) {
				return fmt.Errorf("bad score %q", r.Members[i].Score)
			}
			r.Members[i].score = f
		}
	case "stream":
		last := streamID{}
		for _, e := range r.Entries {
			id, err := parseStreamID(e.ID)
			if err != nil {
				return err
			}
			if !last.less(id) {
				return fmt.Errorf("stream entry %s is out of order", e.ID)
			}
			last = id
			if len(e.Values) == 0 || len(e.Values)%2 != 0 {
				return fmt.Errorf("stream entry %s needs field-value pairs", e.ID)
			}
		}
		for _, g := range r.Groups {
			if _, err := parseStreamID(g.LastDeliveredID); err != nil {
				return fmt.Errorf("group %q: %w", g.Name, err)
			}
			if g.OldestPendingID != "" {
				if _, err := parseStreamID(g.OldestPendingID); err != nil {
					return fmt.Errorf("group %q: %w", g.Name, err)
				}
			}
		}
	default:
		return fmt.Errorf("unknown type %q", r.Type)
	}
	return nil
}

// streamID is a parsed stream entry ID, "ms-seq". A bare "ms" means
// sequence 0, as Redis reads it: a group created at "0" reports that.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = "0"
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("bad stream ID %q", s)
	}
	return streamID{ms, seq}, nil
}

func (a streamID) less(b streamID) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

func (a streamID) String() string { return fmt.Sprintf("%d-%d", a.ms, a.seq) }

// before is the ID just before a, so that a group whose last delivered ID
// is a.before() gets a next.
func (a streamID) before() streamID {
	switch {
	case a.seq > 0:
		return streamID{a.ms, a.seq - 1}
	case a.ms > 0:
		return streamID{a.ms - 1, math.MaxUint64}
	}
	return a
}

// writeSnapshot writes snap to file atomically: a temporary file in the
// same directory, synced, then renamed over file.
func writeSnapshot(dir, file string, snap *snapshotFile) (err error) {
	tmp, err := os.CreateTemp(dir, snapshotName+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("create snapshot file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<16)
	if err := encodeSnapshot(w, snap); err != nil {
		return fmt.Errorf("write snapshot %s: %w", tmp.Name(), err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write snapshot %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync snapshot %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close snapshot %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("replace snapshot %s: %w", file, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync data directory %s: %w", dir, err)
	}
	return nil
}

// encodeSnapshot writes snap as JSON with one key per line.
func encodeSnapshot(w io.Writer, snap *snapshotFile) error {
	savedAt, err := json.Marshal(snap.SavedAt)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, `{"format":%q,"version":%d,"saved_at":%s,"keys":[`+"\n",
		snapshotFormat, snapshotVersion, savedAt); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range snap.Keys {
		if i > 0 {
			if _, err := io.WriteString(w, ","); err != nil {
				return err
			}
		}
		if err := enc.Encode(&snap.Keys[i]); err != nil {
			return fmt.Errorf("key %q: %w", snap.Keys[i].Key, err)
		}
	}
	_, err = io.WriteString(w, "]}\n")
	return err
}

// removeStaleTemps deletes temporary snapshot files that a crash left
// behind. The caller holds the DataDir lock, so none is being written.
func removeStaleTemps(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		name := ent.Name()
		if ent.Type().IsRegular() && strings.HasPrefix(name, snapshotName+".") && strings.HasSuffix(name, ".tmp") {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				log.Warn("could not remove a stale temporary snapshot", "file", filepath.Join(dir, name), "err", err)
			}
		}
	}
}

// expireAt turns a remaining TTL into an absolute Unix time in
// milliseconds, rounded up so that a key is never restored with less time
// than it had. 0 means no expiry.
func expireAt(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	ns := now.Add(ttl).UnixNano()
	return (ns + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// dump copies database 0. The caller holds the gate, so no command sent
// through the client runs meanwhile, and the clock lock, so TTLs don't
// move; now is the time the TTLs are relative to. ctx must bypass the gate.
//
// Strings, hashes, sets and streams are read with miniredis's direct API,
// which copies under its lock. Lists and sorted sets are read with LRANGE
// and ZRANGE: the direct API returns miniredis's own slice and map for
// them, which a blocking command (not held back by the gate) might change
// while they are copied.
func (e *embedded) dump(ctx context.Context, now time.Time) (*snapshotFile, error) {
	db := e.srv.DB(0)
	snap := &snapshotFile{Format: snapshotFormat, Version: snapshotVersion, SavedAt: now.UTC()}
	var later []int // indexes in snap.Keys of lists, sorted sets and streams
	for _, k := range db.Keys() {
		r := keyRecord{Key: bstr(k), Type: db.Type(k)}
		switch r.Type {
		case "string":
			v, err := db.Get(k)
			if err != nil {
				continue // gone meanwhile
			}
			r.Value = (*bstr)(&v)
		case "hash":
			fields, err := db.HKeys(k)
			if err != nil {
				continue
			}
			for _, f := range fields {
				r.Fields = append(r.Fields, hashField{
					Field: bstr(f), Value: bstr(db.HGet(k, f)), ExpireAt: expireAt(now, db.HTTL(k, f)),
				})
			}
		case "set":
			members, err := db.Members(k)
			if err != nil {
				continue
			}
			r.Items = make([]bstr, len(members))
			for i, m := range members {
				r.Items[i] = bstr(m)
			}
		case "stream":
			entries, err := db.Stream(k)
			if err != nil {
				continue
			}
			r.Entries = make([]streamEntry, len(entries))
			for i, ent := range entries {
				vals := make([]bstr, len(ent.Values))
				for j, v := range ent.Values {
					vals[j] = bstr(v)
				}
				r.Entries[i] = streamEntry{ID: ent.ID, Values: vals}
			}
			later = append(later, len(snap.Keys))
		case "list", "zset":
			later = append(later, len(snap.Keys))
		case "":
			continue // gone meanwhile
		default:
			e.warnOnce("type "+r.Type, "the embedded store cannot save keys of this type; they are lost at restart",
				"type", r.Type, "example_key", k)
			continue
		}
		r.ExpireAt = expireAt(now, db.TTL(k))
		snap.Keys = append(snap.Keys, r)
	}
	for start := 0; start < len(later); start += pipelineChunk {
		if err := e.dumpByCommands(ctx, snap.Keys, later[start:min(start+pipelineChunk, len(later))]); err != nil {
			return nil, err
		}
	}
	// Drop what vanished while it was read (a blocking pop can empty a
	// list), so that the snapshot stays valid.
	kept := snap.Keys[:0]
	for _, r := range snap.Keys {
		switch {
		case r.Type == "list" || r.Type == "set":
			if len(r.Items) == 0 {
				continue
			}
		case r.Type == "zset" && len(r.Members) == 0, r.Type == "hash" && len(r.Fields) == 0:
			continue
		}
		kept = append(kept, r)
	}
	snap.Keys = kept
	for i := 1; i < 16; i++ {
		if n := len(e.srv.DB(i).Keys()); n > 0 {
			e.warnOnce("db "+strconv.Itoa(i), "the embedded store saves database 0 only; keys in another database are lost at restart",
				"db", i, "keys", n)
		}
	}
	return snap, nil
}

// dumpByCommands fills in the lists, sorted sets and stream groups at idx.
func (e *embedded) dumpByCommands(ctx context.Context, keys []keyRecord, idx []int) error {
	pipe := e.client.Pipeline()
	cmds := make([]redis.Cmder, len(idx))
	for i, n := range idx {
		k := string(keys[n].Key)
		switch keys[n].Type {
		case "list":
			cmds[i] = pipe.LRange(ctx, k, 0, -1)
		case "zset":
			cmds[i] = pipe.ZRangeWithScores(ctx, k, 0, -1)
		case "stream":
			cmds[i] = pipe.XInfoGroups(ctx, k)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read lists, sorted sets and streams: %w", err)
	}
	type pending struct {
		rec, group int
		cmd        *redis.XPendingCmd
	}
	var pendings []pending
	for i, n := range idx {
		r := &keys[n]
		switch cmd := cmds[i].(type) {
		case *redis.StringSliceCmd:
			for _, v := range cmd.Val() {
				r.Items = append(r.Items, bstr(v))
			}
		case *redis.ZSliceCmd:
			for _, z := range cmd.Val() {
				m, _ := z.Member.(string)
				r.Members = append(r.Members, zMember{Member: bstr(m), Score: strconv.FormatFloat(z.Score, 'g', -1, 64)})
			}
		case *redis.XInfoGroupsCmd:
			for _, g := range cmd.Val() {
				r.Groups = append(r.Groups, streamGroup{Name: bstr(g.Name), LastDeliveredID: g.LastDeliveredID})
				if g.Pending > 0 {
					pendings = append(pendings, pending{rec: n, group: len(r.Groups) - 1})
				}
			}
		}
	}
	if len(pendings) == 0 {
		return nil
	}
	pipe = e.client.Pipeline()
	for i := range pendings {
		p := &pendings[i]
		p.cmd = pipe.XPending(ctx, string(keys[p.rec].Key), string(keys[p.rec].Groups[p.group].Name))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("read pending stream entries: %w", err)
	}
	for _, p := range pendings {
		if v := p.cmd.Val(); v != nil && v.Count > 0 {
			keys[p.rec].Groups[p.group].OldestPendingID = v.Lower
		}
	}
	return nil
}

// restore loads snap into database 0, skipping what expired before now. It
// returns how many keys it restored and how many had expired.
func (e *embedded) restore(ctx context.Context, snap *snapshotFile, now time.Time) (restored, expired int, err error) {
	db := e.srv.DB(0)
	ttlOf := func(at int64) time.Duration {
		if at == 0 {
			return 0
		}
		return time.UnixMilli(at).Sub(now)
	}
	for i := range snap.Keys {
		r := &snap.Keys[i]
		k := string(r.Key)
		ttl := ttlOf(r.ExpireAt)
		if r.ExpireAt != 0 && ttl <= 0 {
			expired++
			continue
		}
		var err error
		switch r.Type {
		case "string":
			err = db.Set(k, string(*r.Value))
		case "hash":
			fv := make([]string, 0, 2*len(r.Fields))
			for _, f := range r.Fields {
				if f.ExpireAt == 0 || ttlOf(f.ExpireAt) > 0 {
					fv = append(fv, string(f.Field), string(f.Value))
				}
			}
			if len(fv) == 0 {
				expired++
				continue
			}
			db.HSet(k, fv...)
			for _, f := range r.Fields {
				if t := ttlOf(f.ExpireAt); t > 0 {
					db.HExpire(k, string(f.Field), t)
				}
			}
		case "list":
			_, err = db.Push(k, bstrings(r.Items)...)
		case "set":
			_, err = db.SetAdd(k, bstrings(r.Items)...)
		case "zset":
			for _, m := range r.Members {
				if _, err = db.ZAdd(k, m.score, string(m.Member)); err != nil {
					break
				}
			}
		case "stream":
			err = e.restoreStream(ctx, k, r)
		}
		if err != nil {
			return restored, expired, fmt.Errorf("key %q: %w", k, err)
		}
		if ttl > 0 {
			db.SetTTL(k, ttl)
		}
		restored++
	}
	return restored, expired, nil
}

// restoreStream adds a stream's entries and re-creates its groups.
func (e *embedded) restoreStream(ctx context.Context, k string, r *keyRecord) error {
	db := e.srv.DB(0)
	for _, ent := range r.Entries {
		if _, err := db.XAdd(k, ent.ID, bstrings(ent.Values)); err != nil {
			return fmt.Errorf("stream entry %s: %w", ent.ID, err)
		}
	}
	for _, g := range r.Groups {
		last, _ := parseStreamID(g.LastDeliveredID)
		if g.OldestPendingID != "" {
			oldest, _ := parseStreamID(g.OldestPendingID)
			if before := oldest.before(); before.less(last) {
				last = before
			}
			e.log.Warn("pending stream entries are delivered again after the restart",
				"stream", k, "group", string(g.Name), "from", oldest.String())
		}
		if err := e.client.XGroupCreateMkStream(ctx, k, string(g.Name), last.String()).Err(); err != nil {
			return fmt.Errorf("create consumer group %q: %w", g.Name, err)
		}
	}
	if len(r.Entries) == 0 && len(r.Groups) == 0 {
		// An empty stream: create it through a throw-away group.
		const tmp = "parley-restore"
		if err := e.client.XGroupCreateMkStream(ctx, k, tmp, "0").Err(); err != nil {
			return fmt.Errorf("create empty stream: %w", err)
		}
		if err := e.client.XGroupDestroy(ctx, k, tmp).Err(); err != nil {
			return fmt.Errorf("create empty stream: %w", err)
		}
	}
	return nil
}

func bstrings(bs []bstr) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}
