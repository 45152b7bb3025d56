package peers

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestBoltEventRoundTrip(t *testing.T) {
	id := uuid.MustParse("01936b2e-5a3c-7def-8abc-0123456789ab")
	for _, e := range []Event{
		{ID: id, Type: "T", Data: map[string]any{}},
		{ID: id, Type: strings.Repeat("t", 255), Data: map[string]any{"order_id": "42", "n": 1.5, "list": []any{"a"}}},
	} {
		rec, err := encodeBoltEvent(e)
		if err != nil {
			t.Fatalf("encode %q: %v", e.Type, err)
		}
		got, err := decodeBoltEvent(rec)
		if err != nil || !reflect.DeepEqual(got, e) {
			t.Errorf("decode(encode(%+v)) = %+v, %v", e, got, err)
		}
	}
}

func TestBoltEventRefused(t *testing.T) {
	id := uuid.MustParse("01936b2e-5a3c-7def-8abc-0123456789ab")
	for _, c := range []struct {
		name string
		e    Event
		want string
	}{
		{"empty type", Event{ID: id, Data: map[string]any{}}, "type must be 1–255 bytes, got 0"},
		{"long type", Event{ID: id, Type: strings.Repeat("t", 256)}, "got 256"},
		{"data JSON cannot hold", Event{ID: id, Type: "T", Data: map[string]any{"c": make(chan int)}}, "encode data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := encodeBoltEvent(c.e)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), id.String()) {
				t.Errorf("encode: got %v, want an error naming the event and %q", err, c.want)
			}
		})
	}

	good, err := encodeBoltEvent(Event{ID: id, Type: "Type", Data: map[string]any{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		rec  []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"torn header", good[:10], "10 bytes"},
		{"zero type length", append(append([]byte{}, good[:16]...), 0, '{', '}'), "type length 0"},
		{"torn type", good[:19], "type length 4, 2 bytes left"},
		{"torn data", good[:len(good)-1], "data"},
		{"data not an object", append(append([]byte{}, good[:21]...), "[1]"...), "data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeBoltEvent(c.rec)
			if !errors.Is(err, errBoltRecord) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("decode: got %v, want errBoltRecord saying %q", err, c.want)
			}
		})
	}
}

func FuzzDecodeBoltEvent(f *testing.F) {
	for _, e := range []Event{
		{ID: uuid.New(), Type: "OrderPlaced", Data: map[string]any{"order_id": "1", "payload": "xyz"}},
		{ID: uuid.New(), Type: "T", Data: map[string]any{}},
	} {
		rec, err := encodeBoltEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		e, err := decodeBoltEvent(rec)
		if err != nil {
			if !errors.Is(err, errBoltRecord) {
				t.Fatalf("decode error %v does not match errBoltRecord", err)
			}
			return
		}
		again, err := encodeBoltEvent(e)
		if err != nil {
			t.Fatalf("re-encode a decoded event %+v: %v", e, err)
		}
		back, err := decodeBoltEvent(again)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", e, back, err)
		}
	})
}
