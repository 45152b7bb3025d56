package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// spoilData makes the event data holding marker, a list of marker and the integer 1,
// undecodable in the segments of the closed store in dir: the 1 after marker becomes
// 0xc1, a code msgpack never uses, and the record's checksum is made again, so the
// record is intact and only its data does not decode.
func spoilData(t *testing.T, dir, marker string) {
	t.Helper()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for _, seg := range damagetest.Segments(t, dir) {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		at := bytes.Index(b, []byte(marker))
		if at < 0 {
			continue
		}
		// A segment is entries of a uvarint length and a record whose first 4 bytes
		// are the CRC-32C of the rest (log/FORMAT.md).
		for off := 0; off < len(b); {
			n, k := binary.Uvarint(b[off:])
			if k <= 0 {
				t.Fatalf("%s: entry at %d does not frame", seg, off)
			}
			start, end := off+k, off+k+int(n)
			if at < start || at >= end {
				off = end
				continue
			}
			if b[at+len(marker)] != 0x01 {
				t.Fatalf("%s: %#x after %q, want 0x01", seg, b[at+len(marker)], marker)
			}
			b[at+len(marker)] = 0xc1
			binary.LittleEndian.PutUint32(b[start:], crc32.Checksum(b[start+4:end], castagnoli))
			if err := os.WriteFile(seg, b, 0o640); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%q is in no segment of %s", marker, dir)
}

// TestUndecodableDataNamesItsVersion: an intact record whose event data does not decode
// fails a read of its stream that starts at it with corrupt naming its position and its
// version in the stream (the field, and "(version N of stream S)" in the message), as a
// damaged record does (docs/api.md), and a subscription to the stream the same, in its
// error event; a read of $all names its position only. The server decodes events itself
// (decoded.go) and named no stream: the version was left out.
func TestUndecodableDataNamesItsVersion(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quiet()}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	const marker = "MARK-UNDECODABLE"
	for _, d := range []any{"fine", []any{marker, 1}, "after"} {
		if _, err := store.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "E", Data: map[string]any{"l": d}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	spoilData(t, dir, marker)
	if store, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(store, Options{Logger: quiet()}))
	t.Cleanup(func() {
		ts.Close()
		store.Close()
	})
	e := &env{t: t, store: store, ts: ts}

	named := `damaged record at position 2 (version 1 of stream "s")`
	bad := e.do("GET", "/v1/streams/s?from=1", nil).mustError(t, http.StatusInternalServerError, "corrupt")
	if fmt.Sprint(bad.body["position"]) != "2" || fmt.Sprint(bad.body["version"]) != "1" || !strings.HasPrefix(fmt.Sprint(bad.body["message"]), named) {
		t.Fatalf("read of the stream from the undecodable event: %s, want position 2, version 1 and %s", bad.raw, named)
	}
	page := e.do("GET", "/v1/streams/s", nil).must(t, http.StatusOK)
	if n := len(page.events(t)); n != 1 || fmt.Sprint(page.body["next"]) != "1" {
		t.Fatalf("page of the stream: %d events, next %v; want 1 event and next version 1", n, page.body["next"])
	}
	all := e.do("GET", "/v1/all?from=2", nil).mustError(t, http.StatusInternalServerError, "corrupt")
	if fmt.Sprint(all.body["position"]) != "2" || all.body["version"] != nil {
		t.Fatalf("read of $all from the undecodable event: %s, want position 2 and no version", all.raw)
	}

	sub := openSSE(t, ts.URL+"/v1/subscribe?stream=s&from=1", "")
	f := sub.next(t)
	for f.data == "" { // the retry frame, heartbeats
		f = sub.next(t)
	}
	var body errorBody
	if f.event != "error" || json.Unmarshal([]byte(f.data), &body) != nil || body.Error != codeCorrupt || !strings.HasPrefix(body.Message, named) {
		t.Fatalf("subscription to the stream: %+v, want an error event, corrupt, %s", f, named)
	}
	if body.Position == nil || *body.Position != 2 || body.Version == nil || *body.Version != 1 || f.id != "1" {
		t.Fatalf("subscription to the stream: error event %s with id %q, want position 2, version 1 and id 1", f.data, f.id)
	}
	sub.waitEnd(t)
}
