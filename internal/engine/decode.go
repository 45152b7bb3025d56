package engine

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// DecodeMap decodes an event's msgpack data or metadata, as every reader of the event
// sees it: an empty map for none.
//
// Before Append refused them, data could hold maps whose keys are not strings (a Go
// map[int]int, a config's groupBy over numbers), and msgpack wrote them as they were.
// Such a record is read with those keys as strings (1, true, 1.5 as "1", "true", "1.5";
// two keys that print the same keep one of their values) rather than failed as damaged,
// which stopped every reader of $all and of its stream at it. Only a record the plain
// decode refuses pays for that.
func DecodeMap(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	err := msgpack.Unmarshal(b, &m)
	if err == nil {
		return m, nil
	}
	d := msgpack.NewDecoder(bytes.NewReader(b))
	d.SetMapDecoder(decodeAnyKeys)
	m = nil
	if d.Decode(&m) != nil {
		return nil, err
	}
	return m, nil
}

// decodeAnyKeys decodes a map whose keys may be of any type into a map of their strings.
func decodeAnyKeys(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n == -1 {
		return nil, err
	}
	m := make(map[string]any, n)
	for range n {
		k, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		v, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		var key string
		switch k := k.(type) {
		case string:
			key = k
		case []byte:
			key = string(k) // as the plain decode reads a bin key
		default:
			key = fmt.Sprint(k)
		}
		m[key] = v
	}
	return m, nil
}
