package index

import "testing"

// TestCategoryOf pins the contract's rule: the category is the part of a stream's name
// before its first $, and a name without $ is its own category. The model test derives
// its expectations from CategoryOf itself, so only this table holds it to the rule.
func TestCategoryOf(t *testing.T) {
	tests := []struct {
		stream, category string
	}{
		{"Order$42", "Order"},
		{"Order$1$2", "Order"},
		{"Order", "Order"},
		{"Order-x$3", "Order-x"},
		{"Order$", "Order"},
		{"$all", ""},
		{"Bestellung.é$ü$1", "Bestellung.é"},
	}
	for _, tt := range tests {
		if got := CategoryOf(tt.stream); got != tt.category {
			t.Errorf("CategoryOf(%q) = %q, want %q", tt.stream, got, tt.category)
		}
	}
}
