package api

import "testing"

// The name parsing of Citus errors needs no Citus: workers' names are plain strings.
func TestShardless(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"order_lines_102008", "order_lines"},
		{"customers_102040", "customers"},
		{"order_lines", "order_lines"},
		{"orders_2024", "orders_2024"}, // a year, not a shard id
		{"stock_items_12ab345", "stock_items_12ab345"},
		{"_102008", "_102008"},
		{"items_", "items_"},
		{"", ""},
	} {
		if got := shardless(c.in); got != c.want {
			t.Errorf("shardless(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
