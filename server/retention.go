package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pmd-dev/pmd"
)

// retentionJSON is a stream's retention settings as the API reads and writes them
// (contract section 14); a field left out is not set.
type retentionJSON struct {
	MaxAge         string `json:"max_age,omitempty"` // a Go duration: "720h", "90m"
	MaxCount       uint64 `json:"max_count,omitempty"`
	TruncateBefore uint64 `json:"truncate_before,omitempty"`
}

func toRetentionJSON(r pmd.Retention) retentionJSON {
	out := retentionJSON{MaxCount: r.MaxCount, TruncateBefore: r.TruncateBefore}
	if r.MaxAge > 0 {
		out.MaxAge = r.MaxAge.String()
	}
	return out
}

func (s *Server) getMetadata(w http.ResponseWriter, r *http.Request) error {
	stream := r.PathValue("stream")
	if err := checkName("stream", stream); err != nil {
		return err
	}
	ret, err := s.store.Retention(stream)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toRetentionJSON(ret))
}

func (s *Server) putMetadata(w http.ResponseWriter, r *http.Request) error {
	v, err := readBody(r)
	if err != nil {
		return err
	}
	ret, err := retentionFromJSON(v)
	if err != nil {
		return err
	}
	// A stream an owner keeps whole (a process manager's: pmd.Store.Keep) refuses
	// settings that hide anything, whoever asks: bad_request naming the owner.
	if err := s.store.SetRetention(r.Context(), r.PathValue("stream"), ret); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toRetentionJSON(ret))
}

// maxAgeLimit is the longest max_age, the longest time.Duration in whole hours: a longer
// one does not parse, and was refused as though it were negative or no duration at all.
const maxAgeLimit = "2562047h"

// retentionFromJSON reads {"max_age": "720h", "max_count": 1000, "truncate_before": 42}.
func retentionFromJSON(v any) (pmd.Retention, error) {
	body, err := object(v, "", "stream metadata", "max_age", "max_count", "truncate_before")
	if err != nil {
		return pmd.Retention{}, err
	}
	var ret pmd.Retention
	if raw, ok := body["max_age"]; ok && raw != nil {
		str, ok := raw.(string)
		if !ok {
			return ret, errBadRequest("max_age must be a duration string such as \"720h\", got %s", kind(raw))
		}
		d, err := time.ParseDuration(str)
		if err != nil || d < 0 {
			return ret, errBadRequest("max_age %q is not a duration from 0 to %s (about 292 years), such as \"720h\" or \"90m\"", str, maxAgeLimit)
		}
		ret.MaxAge = d
	}
	for _, f := range []struct {
		name string
		to   *uint64
	}{{"max_count", &ret.MaxCount}, {"truncate_before", &ret.TruncateBefore}} {
		raw, ok := body[f.name]
		if !ok || raw == nil {
			continue
		}
		switch n := raw.(type) {
		case int64:
			if n < 0 {
				return ret, errBadRequest("%s must not be negative, got %d", f.name, n)
			}
			*f.to = uint64(n)
		case uint64:
			*f.to = n
		default:
			return ret, errBadRequest("%s must be a whole number, got %s", f.name, kind(raw))
		}
	}
	return ret, nil
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request) error {
	if err := noBody(r); err != nil {
		return err
	}
	if err := s.store.EraseStream(r.Context(), r.PathValue("stream")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type scavengeJSON struct {
	Expired     int   `json:"expired_streams"`
	Segments    int   `json:"segments"`
	Rewritten   int   `json:"rewritten"`
	Gone        int   `json:"gone"`
	DeadKept    int   `json:"dead_kept"`
	Erased      int   `json:"erased"`
	BytesBefore int64 `json:"bytes_before"`
	BytesAfter  int64 `json:"bytes_after"`
	Freed       int64 `json:"freed_bytes"`
	// Quarantines are the quarantines removed from the data directory because the
	// store has erased data (pmd.ScavengeResult.Quarantines); never null.
	Quarantines []string `json:"quarantines_removed"`
}

func newScavengeJSON(res pmd.ScavengeResult) scavengeJSON {
	quarantines := res.Quarantines
	if quarantines == nil {
		quarantines = []string{}
	}
	return scavengeJSON{res.Expired, res.Segments, res.Rewritten, res.Gone, res.DeadKept, res.Erased,
		res.BytesBefore, res.BytesAfter, res.Freed(), quarantines}
}

// scavengeCorruptJSON answers a scavenge that met damage (a damaged segment, kept as it
// was while the others were scavenged, or a damaged event that stopped a stream's
// expiry): the corrupt error's body, and beside it what the scavenge did, as its 200
// says it, for the bytes it freed and the quarantines it removed are real.
type scavengeCorruptJSON struct {
	errorBody
	scavengeJSON
}

// scavenge runs as long as the log takes at the scavenge's rate (its route is long: no
// request timeout, which would stop a log of a few GiB every time at the same segments).
// It stops when the client goes away or the server shuts down, keeping what it did.
// Damage fails it with corrupt, whose answer also carries what it did.
func (s *Server) scavenge(w http.ResponseWriter, r *http.Request) error {
	if err := noBody(r); err != nil {
		return err
	}
	ctx, cancel := s.untilStop(r.Context())
	defer cancel()
	res, err := s.store.Scavenge(ctx, pmd.ScavengeOptions{})
	if err != nil && ctx.Err() != nil && r.Context().Err() == nil {
		return errShutdown(fmt.Sprintf("the server is shutting down: the scavenge stopped after freeing %d bytes, which stay freed", res.Freed()))
	}
	if err != nil {
		status, code := classify(err)
		if code != codeCorrupt {
			return err
		}
		// As writeError logs a failed request; the answer is this route's own.
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
		return writeJSON(w, status, scavengeCorruptJSON{newErrorBody(code, err.Error(), err), newScavengeJSON(res)})
	}
	return writeJSON(w, http.StatusOK, newScavengeJSON(res))
}

// untilStop returns a context that ends with ctx or when the server begins to shut
// down, for a long request's work.
func (s *Server) untilStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
