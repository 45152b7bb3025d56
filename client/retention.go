package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pmd-dev/pmd"
)

// retentionJSON is the API's form of pmd.Retention.
type retentionJSON struct {
	MaxAge         string `json:"max_age,omitempty"`
	MaxCount       uint64 `json:"max_count,omitempty"`
	TruncateBefore uint64 `json:"truncate_before,omitempty"`
}

func (r retentionJSON) retention() (pmd.Retention, error) {
	out := pmd.Retention{MaxCount: r.MaxCount, TruncateBefore: r.TruncateBefore}
	if r.MaxAge != "" {
		d, err := time.ParseDuration(r.MaxAge)
		if err != nil {
			return out, fmt.Errorf("client: max_age %q from the daemon: %w", r.MaxAge, err)
		}
		out.MaxAge = d
	}
	return out, nil
}

// Retention returns the retention settings of stream (zero if it has none).
func (c *Client) Retention(ctx context.Context, stream string) (pmd.Retention, error) {
	if err := checkStream(stream); err != nil {
		return pmd.Retention{}, err
	}
	var out retentionJSON
	if err := c.do(ctx, "GET", streamPath(stream)+"/metadata", nil, &out); err != nil {
		return pmd.Retention{}, err
	}
	return out.retention()
}

// SetRetention replaces the retention settings of stream (PUT .../metadata); what they
// no longer keep stops being read from the stream at once. It needs scope write.
func (c *Client) SetRetention(ctx context.Context, stream string, r pmd.Retention) error {
	if err := checkWritable(stream); err != nil {
		return err
	}
	if r.MaxAge < 0 {
		return invalid("max_age", "must not be negative, got %s", r.MaxAge)
	}
	body := retentionJSON{MaxCount: r.MaxCount, TruncateBefore: r.TruncateBefore}
	if r.MaxAge > 0 {
		body.MaxAge = r.MaxAge.String()
	}
	return c.do(ctx, "PUT", streamPath(stream)+"/metadata", body, nil)
}

// EraseStream erases the data and metadata of every event appended to stream so far.
// It needs scope admin.
func (c *Client) EraseStream(ctx context.Context, stream string) error {
	if err := checkWritable(stream); err != nil {
		return err
	}
	return c.do(ctx, "POST", streamPath(stream)+"/erase", nil, nil)
}

// ScavengeResult is what a scavenge did.
type ScavengeResult struct {
	ExpiredStreams int   `json:"expired_streams"`
	Segments       int   `json:"segments"`
	Rewritten      int   `json:"rewritten"`
	Gone           int   `json:"gone"`
	DeadKept       int   `json:"dead_kept"` // 0 from a daemon too old to say (it counted them in Erased)
	Erased         int   `json:"erased"`
	BytesBefore    int64 `json:"bytes_before"`
	BytesAfter     int64 `json:"bytes_after"`
	FreedBytes     int64 `json:"freed_bytes"`
	// QuarantinesRemoved are the paths of the quarantines the scavenge removed from the
	// daemon's data directory because the store has erased data, which they may hold
	// (pmd.ScavengeResult.Quarantines); empty if none, nil from a daemon too old to say.
	QuarantinesRemoved []string `json:"quarantines_removed"`
}

// Scavenge asks the daemon to reclaim the disk of dead and erased events, and waits
// for it to finish. It needs scope admin. A scavenge that met damage (a segment with a
// damaged record, kept as it was while the others were scavenged, or a damaged event
// that stopped a stream's expiry) returns what it did all the same, with the daemon's
// corrupt *Error (errors.Is(err, pmd.ErrCorrupt)) naming the damage: the bytes the
// other segments freed and the quarantines it removed are real. Any other error
// returns a zero result.
func (c *Client) Scavenge(ctx context.Context) (ScavengeResult, error) {
	req, err := c.request(ctx, "POST", "/v1/admin/scavenge", nil)
	if err != nil {
		return ScavengeResult{}, err
	}
	resp, err := c.send(req)
	if err != nil {
		return ScavengeResult{}, err
	}
	raw, err := c.answer(ctx, resp)
	if err != nil {
		return ScavengeResult{}, err
	}
	var out ScavengeResult
	if resp.StatusCode >= 300 {
		apiErr := apiError(resp, raw)
		// The daemon's 500 corrupt carries the result's fields beside the error's; an
		// older daemon's, the error alone, which leaves out zero.
		if apiErr.Code == "corrupt" && resp.StatusCode == http.StatusInternalServerError && decode(raw, &out) != nil {
			out = ScavengeResult{}
		}
		return out, apiErr
	}
	if err := decode(raw, &out); err != nil {
		return ScavengeResult{}, err
	}
	return out, nil
}
