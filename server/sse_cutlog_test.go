package server

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCutSubscriberLogNamesWhatItFollowed: the line logged when a subscriber is cut
// names what it followed, a category as well as a stream: a category subscriber was
// logged with stream="" as if it followed the whole log.
func TestCutSubscriberLogNamesWhatItFollowed(t *testing.T) {
	for _, tc := range []struct {
		name, query, want string
	}{
		{"category", "?category=Live", "category=Live"},
		{"stream", "?stream=Live%241", "stream=Live$1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logged syncBuffer
			e := newEnv(t, Options{SubscriberBuffer: 64 << 10, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			addr := strings.TrimPrefix(smallServer(t, e).URL, "http://")
			rawSubscribe(t, addr, tc.query)
			// More than the socket buffers on both sides and the subscriber buffer hold.
			for range 300 {
				e.append("Live$1", nil, ev("E", map[string]any{"pad": blob(8 << 10)})).must(t, http.StatusCreated)
			}
			var line string
			waitFor(t, "the cut is logged", func() bool {
				for l := range strings.SplitSeq(logged.String(), "\n") {
					if strings.Contains(l, "subscriber cut") {
						line = l
						return true
					}
				}
				return false
			})
			if !strings.Contains(line, " "+tc.want+" ") {
				t.Errorf("the cut was logged as %q, want it to name %s", line, tc.want)
			}
		})
	}
}
