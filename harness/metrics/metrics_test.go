package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const exposition = `# TYPE service_latency histogram
service_latency_bucket{operation="StartWorkflowExecution",le="0.01"} 2
service_latency_bucket{operation="StartWorkflowExecution",le="+Inf"} 3
service_latency_sum{operation="StartWorkflowExecution"} 0.06
service_latency_count{operation="StartWorkflowExecution"} 3
service_latency_bucket{operation="PollWorkflowTaskQueue",le="+Inf"} 1
service_latency_sum{operation="PollWorkflowTaskQueue"} 20
service_latency_count{operation="PollWorkflowTaskQueue"} 1
# TYPE service_requests counter
service_requests{operation="StartWorkflowExecution"} 3
`

func TestParseTotalsAndGroups(t *testing.T) {
	s, err := Parse(strings.NewReader(exposition))
	require.NoError(t, err)
	tests := []struct {
		name  string
		match map[string]string
		want  Value
	}{
		{"service_latency", map[string]string{"operation": "StartWorkflowExecution"}, Value{Sum: 0.06, Count: 3}},
		{"service_latency", nil, Value{Sum: 20.06, Count: 4}},
		{"service_requests", nil, Value{Sum: 3}},
		{"absent", nil, Value{}},
	}
	for _, tc := range tests {
		got := s.Total(tc.name, tc.match)
		require.InDelta(t, tc.want.Sum, got.Sum, 1e-9, tc.name)
		require.Equal(t, tc.want.Count, got.Count, tc.name)
	}
	by := s.By("service_latency", "operation", nil)
	require.InDelta(t, 0.02, by["StartWorkflowExecution"].Mean(), 1e-9)
	require.Equal(t, []string{"service_latency", "service_requests"}, s.Names())
}

func TestSubIsWhatHappenedBetween(t *testing.T) {
	before, err := Parse(strings.NewReader(exposition))
	require.NoError(t, err)
	after, err := Parse(strings.NewReader(strings.NewReplacer(
		`service_latency_sum{operation="StartWorkflowExecution"} 0.06`, `service_latency_sum{operation="StartWorkflowExecution"} 0.16`,
		`service_latency_count{operation="StartWorkflowExecution"} 3`, `service_latency_count{operation="StartWorkflowExecution"} 5`,
	).Replace(exposition)))
	require.NoError(t, err)
	d := after.Sub(before).Total("service_latency", map[string]string{"operation": "StartWorkflowExecution"})
	require.InDelta(t, 0.05, d.Mean(), 1e-9)
	require.Equal(t, 2.0, d.Count)
}

func TestAddSumsDifferences(t *testing.T) {
	s, err := Parse(strings.NewReader(exposition))
	require.NoError(t, err)
	other := Snapshot{"only_here": {Name: "only_here", Labels: map[string]string{}, Value: Value{Sum: 1, Count: 2}}}
	sum := s.Add(s).Add(other)
	require.Equal(t, Value{Sum: 0.12, Count: 6}, sum.Total("service_latency", map[string]string{"operation": "StartWorkflowExecution"}))
	require.Equal(t, Value{Sum: 1, Count: 2}, sum.Total("only_here", nil), "a series of one side only is kept")
	require.Equal(t, 3.0, s.Total("service_requests", nil).Sum, "the operands are not modified")
	require.Equal(t, Value{}, Snapshot(nil).Add(nil).Total("service_requests", nil))
}

func TestParseRejectsGarbage(t *testing.T) {
	_, err := Parse(strings.NewReader("service_latency{operation=\"x\" 1\n"))
	require.Error(t, err)
}

func TestSDKHandlerFeedsTheRegistry(t *testing.T) {
	s, err := NewSDK()
	require.NoError(t, err)
	defer s.Close(context.Background())
	h := s.Handler().WithTags(map[string]string{"operation": "X"})
	h.Timer("temporal_request_latency").Record(250 * time.Millisecond)
	h.Timer("temporal_request_latency").Record(750 * time.Millisecond)
	h.Counter("temporal_request").Inc(2)
	snap, err := s.Snapshot()
	require.NoError(t, err)
	lat := snap.Total("temporal_request_latency_seconds", map[string]string{"operation": "X"})
	require.Equal(t, 2.0, lat.Count, "names: %v", snap.Names())
	require.InDelta(t, 0.5, lat.Mean(), 1e-9)
	require.Equal(t, 2.0, snap.Total("temporal_request", nil).Sum, "names: %v", snap.Names())
}
