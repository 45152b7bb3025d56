package pm_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestManagerStartsPastADamagedDeliveryRecord: a damaged record in a deliveries stream
// (a bad sector) is logged and passed over when Run loads the delivery histories, as a
// subscription passes over one of its own records: the command whose failure it held is
// delivered at once rather than at its recorded retry time, and the other commands are
// not delivered again. Run used to fail at every start, and pmd serve with it.
func TestManagerStartsPastADamagedDeliveryRecord(t *testing.T) {
	const marker = "MARK-fail-MARK"
	clock := pmtest.NewClock(time.Now())
	var before script
	before.set("1/Step1", errors.New(marker+" "+pad))
	opts := pm.Options{Clock: clock, RetryMin: time.Hour, RetryMax: time.Hour, Logger: quiet()}
	s := damagedStore(t, func(s *pmd.Store) {
		o := opts
		o.Deliver = before.handle
		r := start(t, s, stepsDef("Steps"), o)
		appendFact(t, s, goFact("1"))
		appendFact(t, s, goFact("2"))
		r.idle(t)
		r.stop(t)
		sealWithNoise(t, s)
	}, marker)
	if got, want := strings.Join(slices.Sorted(slices.Values(before.got())), " "), "1/Step1 2/Step1 2/Step2 2/Step3"; got != want {
		t.Fatalf("before the damage, delivered %s, want %s", got, want)
	}
	var after script
	opts.Deliver = after.handle
	r := start(t, s, stepsDef("Steps"), opts)
	r.idle(t)
	if got, want := strings.Join(after.got(), " "), "1/Step1 1/Step2 1/Step3"; got != want {
		t.Errorf("after the damage, delivered %s, want %s", got, want)
	}
}
