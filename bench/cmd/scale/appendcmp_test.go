package main

import "testing"

func TestPaired(t *testing.T) {
	tests := []struct {
		name       string
		prev, next []float64
		median     float64
		won        int
	}{
		{"equal", []float64{10, 20, 30}, []float64{10, 20, 30}, 1, 0},
		{"new faster by a quarter", []float64{8, 16, 4, 40}, []float64{10, 20, 5, 50}, 1.25, 4},
		{"mixed", []float64{10, 10, 10}, []float64{8, 9, 12}, 0.9, 1},
		{"extra prev round ignored", []float64{10, 10, 99}, []float64{5, 5}, 0.5, 0},
		{"none", nil, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := paired(tt.prev, tt.next)
			if st.Median != tt.median || st.Won != tt.won {
				t.Errorf("median %v won %d, want %v and %d", st.Median, st.Won, tt.median, tt.won)
			}
			if st.Low > st.Median || st.High < st.Median {
				t.Errorf("interval [%v, %v] does not hold the median %v", st.Low, st.High, st.Median)
			}
		})
	}
}

func TestPairedIntervalNarrowsWithRounds(t *testing.T) {
	prev := []float64{10, 10, 10, 10, 10, 10}
	next := []float64{7, 8, 9, 11, 12, 13}
	few := paired(prev, next)
	many := paired(append(append(append([]float64{}, prev...), prev...), prev...),
		append(append(append([]float64{}, next...), next...), next...))
	if many.High-many.Low >= few.High-few.Low {
		t.Errorf("interval over 18 rounds [%v, %v] is not narrower than over 6 [%v, %v]",
			many.Low, many.High, few.Low, few.High)
	}
}
