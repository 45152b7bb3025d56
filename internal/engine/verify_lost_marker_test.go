package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestVerifyLostMarker: pmd verify of a directory whose index.rebuild names lost
// positions says what the next start does with them: a single node fills them with void
// records; a cluster node (one with raft/) does not, Raft applying the lost entries again
// at their positions. It said a cluster node fills them too.
func TestVerifyLostMarker(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cluster      bool
		want, wantNo string
	}{
		{"single node", false, "fills the positions up to 99 that the log no longer holds with void records", "Raft"},
		{"cluster node", true, "this cluster node applies the lost entries again from Raft, writing the positions up to 99", "void records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := makeStore(t, 20)
			marker := "lost records up to position 99: log: corrupt: segment /d/1 offset 9: the synced records from position 21 to 99 are lost\n"
			if err := os.WriteFile(filepath.Join(dir, engine.RebuildFile), []byte(marker), 0o640); err != nil {
				t.Fatal(err)
			}
			if tc.cluster {
				if err := os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750); err != nil {
					t.Fatal(err)
				}
			}
			r, err := engine.Verify(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			var line string
			for _, p := range r.Problems {
				if strings.HasPrefix(p, "lost records") {
					line = p
				}
			}
			if !strings.Contains(line, tc.want) || strings.Contains(line, tc.wantNo) {
				t.Errorf("problems %q, want one saying %q and not %q", r.Problems, tc.want, tc.wantNo)
			}
		})
	}
}
