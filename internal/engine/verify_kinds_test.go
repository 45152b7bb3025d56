package engine

import (
	"fmt"
	"testing"

	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestVerifyCountsEveryKind: every record kind the log format defines has its count in
// a VerifyReport, so that the counts of a report add up to its records.
func TestVerifyCountsEveryKind(t *testing.T) {
	n := 0
	for k := pmdlog.Kind(1); k.String() != fmt.Sprintf("kind(%d)", uint8(k)); k++ {
		var r VerifyReport
		if !r.count(k) {
			t.Errorf("no count for records of kind %s", k)
			continue
		}
		if sum := r.Events + r.Links + r.Deletes + r.Voids + r.Retentions + r.Erasures + r.Gone; sum != 1 {
			t.Errorf("a record of kind %s counted %d times: %+v", k, sum, r)
		}
		n++
	}
	if n < int(pmdlog.KindGone) {
		t.Fatalf("%d kinds counted, want at least %d", n, pmdlog.KindGone)
	}
}
