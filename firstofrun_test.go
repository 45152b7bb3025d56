package pmd

import "testing"

// TestFirstOfRunOfNoErrorAllocatesNothing: a backward category or type read passes every
// event's error through firstOfRun, nil included, which must cost no allocation.
func TestFirstOfRunOfNoErrorAllocatesNothing(t *testing.T) {
	if allocs := testing.AllocsPerRun(100, func() {
		if err := firstOfRun(nil); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("firstOfRun(nil) allocates %v times, want 0", allocs)
	}
}
