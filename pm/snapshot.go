package pm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/vmihailenco/msgpack/v5"
)

// A snapshot is the fold of a process stream up to a version, kept in the store so that
// a restart, or a process that fell out of the cache, folds only the events after it.
// Snapshots live in a stream of their own, "<Name>.snapshots$<process id>", never in the
// process stream: Apply never sees them, and a lost or distrusted snapshot costs only a
// longer fold. FORMAT.md has the record's layout.
const (
	// SnapshotType is the event type of a snapshot record.
	SnapshotType = "Snapshot"
	// KindSnapshot is the MetaKind of a snapshot record.
	KindSnapshot = "snapshot"
	// snapshotFormat is the layout of a snapshot record's data; a reader ignores
	// snapshots of a format it does not know.
	snapshotFormat = 1
)

func snapshotStream(name, id string) string { return name + ".snapshots$" + id }

// errUnencodable is matched by the errors of a state that does not survive msgpack.
var errUnencodable = errors.New("the state cannot be snapshotted")

// snapshot is what a snapshot record holds: the ledger of the fold (its last is the
// version covered), the definition's state encoded, and the fingerprint of the fold
// that made them.
type snapshot struct {
	fingerprint string
	l           ledger
	state       []byte
}

// data is the snapshot as a record's data.
func (sn *snapshot) data() map[string]any {
	issued := make(map[string]any, len(sn.l.issued))
	for k, v := range sn.l.issued {
		issued[k] = v
	}
	pending := make([]any, 0, len(sn.l.pending))
	for _, d := range sn.l.deadlines() {
		pending = append(pending, map[string]any{
			"key": d.Key, "due": d.Due.Format(time.RFC3339Nano), "type": d.Type,
			"scheduled": d.Scheduled.String(), "correlation": d.correlation,
		})
	}
	out := map[string]any{
		"format":      snapshotFormat,
		"fingerprint": sn.fingerprint,
		"version":     uint64(sn.l.last),
		"first":       uint64(sn.l.first),
		"linked":      sn.l.linked,
		"links":       sn.l.links,
		"commands":    sn.l.commands,
		"fired":       sn.l.fired,
		"issued":      issued,
		"pending":     pending,
		"state":       sn.state,
	}
	// own: the first record of the stream itself, or version+1 for none up to version.
	if sn.l.own >= 0 {
		out["own"] = uint64(sn.l.own)
	} else if sn.l.own == -1 {
		out["own"] = uint64(sn.l.last + 1)
	}
	// Optional, so that snapshots written before retention existed stay trusted.
	if !sn.l.completed.IsZero() {
		out["completed"] = sn.l.completed.UTC().Format(time.RFC3339Nano)
	}
	if !sn.l.recorded.IsZero() {
		out["recorded"] = sn.l.recorded.UTC().Format(time.RFC3339Nano)
	}
	switch sn.l.sourcesOf {
	case sourcesAll:
		sources := make(map[string]any, len(sn.l.sources))
		for stream, pos := range sn.l.sources {
			sources[stream] = pos
		}
		out["sources"] = sources
	case sourcesMany:
		out["sources"] = nil
	}
	return out
}

// decodeSnapshot reads the data of a snapshot record. Any field missing, of the wrong
// type or out of range is an error: a snapshot is trusted whole or not at all.
func decodeSnapshot(data map[string]any) (snapshot, error) {
	var sn snapshot
	format, ok := asUint64(data["format"])
	if !ok {
		return sn, errors.New("format is missing")
	}
	if format != snapshotFormat {
		return sn, fmt.Errorf("format %d is not %d, the one this pmd writes", format, snapshotFormat)
	}
	if sn.fingerprint, ok = data["fingerprint"].(string); !ok {
		return sn, errors.New("fingerprint is not a string")
	}
	if sn.state, ok = data["state"].([]byte); !ok {
		return sn, errors.New("state is not binary")
	}
	nums := map[string]uint64{}
	for _, f := range []string{"version", "first", "linked", "links", "commands", "fired"} {
		n, ok := asUint64(data[f])
		if !ok || n > 1<<62 {
			return sn, fmt.Errorf("%s is not an integer in range: %v", f, data[f])
		}
		nums[f] = n
	}
	if nums["first"] > nums["version"] {
		return sn, fmt.Errorf("first version %d is after the version covered, %d", nums["first"], nums["version"])
	}
	sn.l = ledger{
		last: int64(nums["version"]), first: int64(nums["first"]), linked: nums["linked"],
		links: int(nums["links"]), commands: int(nums["commands"]), fired: int(nums["fired"]),
	}
	// Optional: a snapshot written before it was kept does not know it (ownUnknown).
	sn.l.own = ownUnknown
	if v, ok := data["own"]; ok {
		n, ok := asUint64(v)
		if !ok || n < nums["first"] || n > nums["version"]+1 {
			return sn, fmt.Errorf("own is not a version from %d to %d: %v", nums["first"], nums["version"]+1, v)
		}
		sn.l.own = int64(n)
		if n == nums["version"]+1 {
			sn.l.own = -1
		}
	}
	issued, ok := data["issued"].(map[string]any)
	if !ok {
		return sn, errors.New("issued is not a map")
	}
	pending, ok := data["pending"].([]any)
	if !ok {
		return sn, errors.New("pending is not a list")
	}
	sn.l.issued = make(map[string]uint64, len(issued))
	sn.l.pending = make(map[string]Deadline, len(pending))
	for k, v := range issued {
		n, ok := asUint64(v)
		if !ok || n > nums["version"] {
			return sn, fmt.Errorf("issued[%q] is not a version up to %d: %v", k, nums["version"], v)
		}
		sn.l.issued[k] = n
	}
	if err := decodeSources(data, &sn.l); err != nil {
		return sn, err
	}
	for f, t := range map[string]*time.Time{"completed": &sn.l.completed, "recorded": &sn.l.recorded} {
		v, ok := data[f]
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, asString(v))
		if err != nil {
			return sn, fmt.Errorf("%s is not an RFC 3339 time: %v", f, v)
		}
		*t = at
	}
	for i, v := range pending {
		d, err := decodeDeadline(v)
		if err != nil {
			return sn, fmt.Errorf("pending[%d]: %w", i, err)
		}
		if _, dup := sn.l.pending[d.Key]; dup {
			return sn, fmt.Errorf("pending[%d]: key %q is pending twice", i, d.Key)
		}
		sn.l.pending[d.Key] = d
	}
	return sn, nil
}

// decodeSources reads the optional sources of a snapshot into l: absent in one written
// before they were kept (sourcesUnknown), nil for too many to list (sourcesMany), else a
// map of stream to position.
func decodeSources(data map[string]any, l *ledger) error {
	v, ok := data["sources"]
	switch {
	case !ok:
		l.sourcesOf = sourcesUnknown
		return nil
	case v == nil:
		l.sourcesOf = sourcesMany
		return nil
	}
	sources, ok := v.(map[string]any)
	if !ok || len(sources) > maxSources {
		return fmt.Errorf("sources is not a map of at most %d streams: %v", maxSources, v)
	}
	l.sources = make(map[string]uint64, len(sources))
	for stream, v := range sources {
		pos, ok := asUint64(v)
		if !ok || pos == 0 {
			return fmt.Errorf("sources[%q] is not a log position: %v", stream, v)
		}
		l.sources[stream] = pos
	}
	return nil
}

func decodeDeadline(v any) (Deadline, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Deadline{}, errors.New("not a map")
	}
	var d Deadline
	var due, scheduled string
	for f, dst := range map[string]*string{"key": &d.Key, "due": &due, "type": &d.Type, "scheduled": &scheduled, "correlation": &d.correlation} {
		if *dst, ok = m[f].(string); !ok {
			return Deadline{}, fmt.Errorf("%s is not a string", f)
		}
	}
	var err error
	if d.Due, err = time.Parse(time.RFC3339Nano, due); err != nil {
		return Deadline{}, fmt.Errorf("due: %w", err)
	}
	d.Due = d.Due.UTC()
	if d.Scheduled, err = uuid.Parse(scheduled); err != nil {
		return Deadline{}, fmt.Errorf("scheduled: %w", err)
	}
	return d, nil
}

// snapshotEvent is the record that writes sn.
func snapshotEvent(sn *snapshot) pmd.EventData {
	return pmd.EventData{Type: SnapshotType, Data: sn.data(), Metadata: map[string]any{MetaKind: KindSnapshot}}
}

// encodeState encodes s for a snapshot, and checks that it decodes to a state equal to
// s: msgpack drops what it cannot see (a field tagged "-", a value behind an interface
// that decodes as a map), and a snapshot that folds to another state than the stream
// would be worse than none. A panic of the state's own coder (EncodeMsgpack,
// MarshalMsgpack: a bug in the definition) is such an error too: the process goes on
// without snapshots.
func encodeState[S any](s S) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("%w: its msgpack coder panicked: %v", errUnencodable, r)
		}
	}()
	if path, ok := pmd.HoldsItself(s); ok {
		return nil, fmt.Errorf("%w: it holds itself at %s", errUnencodable, path)
	}
	b, err = msgpack.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnencodable, err)
	}
	back, err := decodeState[S](b)
	if err != nil {
		return nil, fmt.Errorf("%w: it does not decode: %v", errUnencodable, err)
	}
	if !reflect.DeepEqual(s, back) {
		return nil, fmt.Errorf("%w: it decodes to another value (%v, not %v)", errUnencodable, back, s)
	}
	return b, nil
}

// decodeState decodes a state encoded by encodeState. msgpack carries no time zone and
// decodes times as local ones; typed time.Time values are made UTC again, as the store's
// event timestamps are. (A time inside an interface stays as msgpack decodes it, as it
// does in event data.) A panic of the state's own coder (DecodeMsgpack,
// UnmarshalMsgpack) is an error: the snapshot does not decode, and a fold passes it
// over for the stream.
func decodeState[S any](b []byte) (s S, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero S
			s, err = zero, fmt.Errorf("decode the state: its msgpack coder panicked: %v", r)
		}
	}()
	if err := msgpack.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode the state: %w", err)
	}
	utcTimes(reflect.ValueOf(&s).Elem(), map[reflect.Type]bool{})
	return s, nil
}

// utcTimes makes every typed time.Time reachable from the settable v UTC. noTime
// remembers the types known to hold none.
func utcTimes(v reflect.Value, noTime map[reflect.Type]bool) {
	t := v.Type()
	if noTime[t] || selfCoded(t) {
		return
	}
	if t == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
		return
	}
	if !holdsTime(t, map[reflect.Type]bool{}) {
		noTime[t] = true
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			utcTimes(v.Elem(), noTime)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			utcTimes(v.Index(i), noTime)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(t.Elem()).Elem()
			e.Set(it.Value())
			utcTimes(e, noTime)
			v.SetMapIndex(it.Key(), e)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if t.Field(i).IsExported() {
				utcTimes(v.Field(i), noTime)
			}
		}
	}
}

// holdsTime reports whether a value of type t can hold a typed time.Time.
func holdsTime(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == reflect.TypeFor[time.Time]() {
		return true
	}
	if seen[t] || selfCoded(t) {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holdsTime(t.Elem(), seen)
	case reflect.Map:
		return holdsTime(t.Key(), seen) || holdsTime(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsTime(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// selfCoded reports whether t encodes and decodes itself for msgpack.
func selfCoded(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return (t.Implements(reflect.TypeFor[msgpack.CustomEncoder]()) || p.Implements(reflect.TypeFor[msgpack.CustomEncoder]())) &&
		p.Implements(reflect.TypeFor[msgpack.CustomDecoder]()) ||
		(t.Implements(reflect.TypeFor[msgpack.Marshaler]()) || p.Implements(reflect.TypeFor[msgpack.Marshaler]())) &&
			p.Implements(reflect.TypeFor[msgpack.Unmarshaler]())
}

// encodable says why states of type t cannot be snapshotted, or "" if they can: every
// part of it must be something msgpack writes and reads back as it was.
func encodable(t reflect.Type) string {
	return checkEncodable(t, "the state", map[reflect.Type]bool{})
}

func checkEncodable(t reflect.Type, path string, seen map[reflect.Type]bool) string {
	if seen[t] || t == reflect.TypeFor[time.Time]() || selfCoded(t) {
		return ""
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return ""
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return "" // decoded as msgpack decodes event data; encodeState checks the values
		}
		return fmt.Sprintf("%s is of interface type %s, which msgpack cannot decode into", path, t)
	case reflect.Pointer:
		return checkEncodable(t.Elem(), path, seen)
	case reflect.Slice, reflect.Array:
		return checkEncodable(t.Elem(), path+"[i]", seen)
	case reflect.Map:
		if r := checkEncodable(t.Key(), path+" (a map key)", seen); r != "" {
			return r
		}
		return checkEncodable(t.Elem(), path+"[k]", seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			field := path + "." + f.Name
			switch {
			case !f.IsExported():
				return fmt.Sprintf("%s is unexported, and msgpack leaves it out", field)
			case f.Tag.Get("msgpack") == "-":
				return fmt.Sprintf("%s is tagged msgpack:\"-\", and msgpack leaves it out", field)
			}
			if r := checkEncodable(f.Type, field, seen); r != "" {
				return r
			}
		}
		return ""
	}
	return fmt.Sprintf("%s is a %s, which msgpack cannot encode", path, t.Kind())
}

// fingerprint names a fold: the definition's Version and the shape of its state type.
// A snapshot with another fingerprint was made by another fold, and is not trusted.
func fingerprint(version string, t reflect.Type) string {
	var b strings.Builder
	b.WriteString("pm snapshot ")
	b.WriteString(strconv.Itoa(snapshotFormat))
	b.WriteString("\nversion ")
	b.WriteString(strconv.Quote(version))
	b.WriteString("\nstate ")
	writeShape(&b, t, map[reflect.Type]bool{})
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:16])
}

// writeShape writes what a snapshot's bytes depend on in t: names, kinds, fields and
// their tags, recursively.
func writeShape(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	if t.Name() != "" {
		b.WriteString(t.PkgPath())
		b.WriteByte('.')
		b.WriteString(t.Name())
		if seen[t] || t == reflect.TypeFor[time.Time]() {
			return
		}
		seen[t] = true
		b.WriteByte('=')
	}
	switch t.Kind() {
	case reflect.Pointer:
		b.WriteByte('*')
		writeShape(b, t.Elem(), seen)
	case reflect.Slice:
		b.WriteString("[]")
		writeShape(b, t.Elem(), seen)
	case reflect.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		writeShape(b, t.Elem(), seen)
	case reflect.Map:
		b.WriteString("map[")
		writeShape(b, t.Key(), seen)
		b.WriteByte(']')
		writeShape(b, t.Elem(), seen)
	case reflect.Struct:
		b.WriteString("struct{")
		fields := make([]string, 0, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			var fb strings.Builder
			fb.WriteString(f.Name)
			fb.WriteByte(' ')
			writeShape(&fb, f.Type, seen)
			fb.WriteByte(' ')
			fb.WriteString(strconv.Quote(string(f.Tag)))
			fields = append(fields, fb.String())
		}
		b.WriteString(strings.Join(slices.Clip(fields), ";"))
		b.WriteByte('}')
	default:
		b.WriteString(t.Kind().String())
	}
}
