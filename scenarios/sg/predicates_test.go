package sg

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestAnalyse: what SG-01's predicates judge is counted from what a
// collector received, so the counting is tested on its own.
func TestAnalyse(t *testing.T) {
	item := func(sender, seq int) Received { return Received{Item: Item{Sender: sender, Seq: seq}} }
	tests := []struct {
		name string
		got  []Received
		want delivery
	}{
		{"all, in order", []Received{item(0, 0), item(1, 0), item(0, 1), item(1, 1)}, delivery{sent: 4, received: 4}},
		{"one lost", []Received{item(0, 0), item(1, 0), item(1, 1)}, delivery{sent: 4, received: 3, lost: 1}},
		{"one duplicated", []Received{item(0, 0), item(0, 0), item(0, 1), item(1, 0), item(1, 1)},
			delivery{sent: 4, received: 5, duplicated: 1, outOfOrder: 1}},
		{"one sender reordered", []Received{item(0, 1), item(0, 0), item(1, 0), item(1, 1)}, delivery{sent: 4, received: 4, outOfOrder: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := analyse(2, 2, tt.got)
			assert.Equal(t, tt.want, d)
			assert.Equal(t, tt.want == delivery{sent: 4, received: 4}, d.exact())
		})
	}
}

// TestOnTime: a timer is on time from its due time up to, not including,
// timerLateness after it.
func TestOnTime(t *testing.T) {
	due := 2 * time.Second
	for _, tc := range []struct {
		got  time.Duration
		want bool
	}{
		{due - time.Millisecond, false}, {due, true}, {due + 16*time.Millisecond, true},
		{due + timerLateness - time.Millisecond, true}, {due + timerLateness, false},
	} {
		assert.Equal(t, tc.want, onTime(tc.got, due), "%s for %s", tc.got, due)
	}
}
