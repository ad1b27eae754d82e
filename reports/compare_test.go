package reports

import (
	"fmt"
	"strings"
	"testing"

	"github.com/durabench/durabench/harness/evidence"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stars(n int) *int { return &n }

// pfItem is a PF item whose one check gates a latency and a throughput
// median with their intervals, and records a noisy median it does not gate.
func pfItem(latency, throughput [3]float64) jsonItem {
	return jsonItem{ID: "PF-01", Category: "PF", Stars: stars(4), Checks: []jsonCheck{{ID: "PF-01.activity-latency", Timing: true,
		Reproduce: "go test ./scenarios/pf -run '^TestPF01$'", Metrics: map[string]float64{
			"step_ms_p50_lo": latency[0], "step_ms_p50": latency[1], "step_ms_p50_hi": latency[2],
			"rate_p50_lo": throughput[0], "rate_p50": throughput[1], "rate_p50_hi": throughput[2],
			"noisy_ms_p50_lo": latency[0] * 9, "noisy_ms_p50": latency[1] * 9, "noisy_ms_p50_hi": latency[2] * 9,
		}, Gate: map[string]evidence.GateRule{"step_ms": {Better: evidence.LowerIsBetter}, "rate": {Better: evidence.HigherIsBetter, MinEffect: 0.25}}}}}
}

func TestCompare(t *testing.T) {
	steady := pfItem([3]float64{9, 10, 11}, [3]float64{95, 100, 105})
	ex := func(n *int) jsonItem {
		return jsonItem{ID: "EX-01", Category: "EX", Stars: n, Reason: "level 4 failed"}
	}
	tests := []struct {
		name      string
		base, cur []jsonItem
		failClose []jsonFailClose
		want      []string // substrings, one per regression
		metrics   int      // gated medians compared
	}{
		{name: "same", base: []jsonItem{ex(stars(5)), steady}, cur: []jsonItem{ex(stars(5)), steady}, metrics: 2},
		{name: "stars drop", base: []jsonItem{ex(stars(5))}, cur: []jsonItem{ex(stars(3))}, want: []string{"stars EX-01: 5 → 3 (level 4 failed)"}},
		{name: "stars drop names what the failed check observed",
			base: []jsonItem{{ID: "EX-01", Stars: stars(5), Checks: []jsonCheck{{ID: "EX-01.a", Outcome: "passed"}}}},
			cur: []jsonItem{{ID: "EX-01", Stars: stars(4), Reason: "level 5 failed: [EX-01.a]",
				Checks: []jsonCheck{{ID: "EX-01.a", Outcome: "failed", Detail: "the run completed on v1 code"}}}},
			want: []string{"stars EX-01: 5 → 4 (level 5 failed: [EX-01.a]); EX-01.a observed: the run completed on v1 code"}},
		{name: "no longer measured", base: []jsonItem{ex(stars(5))}, cur: []jsonItem{ex(nil)}, want: []string{"not measured now"}},
		{name: "newly measured is fine", base: []jsonItem{ex(nil)}, cur: []jsonItem{ex(stars(2))}},
		{name: "fail-close fails", base: []jsonItem{ex(nil)}, cur: []jsonItem{ex(stars(2))},
			failClose: []jsonFailClose{{Item: "EX-01", Applies: true, Stars: stars(2), Status: "fail"}}, want: []string{"fail-close EX-01: rates 2"}},
		{name: "latency regression beyond noise", base: []jsonItem{steady},
			cur:  []jsonItem{pfItem([3]float64{13, 14, 15}, [3]float64{95, 100, 105})},
			want: []string{"metric PF-01.activity-latency: step_ms_p50 median 10 → 14 (+40.0%, beyond the 10% it may move)"}, metrics: 2},
		{name: "latency shift within noise", base: []jsonItem{steady}, cur: []jsonItem{pfItem([3]float64{10.5, 12, 14}, [3]float64{95, 100, 105})}},
		{name: "significant but immaterial", base: []jsonItem{pfItem([3]float64{9.9, 10, 10.1}, [3]float64{95, 100, 105})},
			cur: []jsonItem{pfItem([3]float64{10.2, 10.3, 10.4}, [3]float64{95, 100, 105})}},
		{name: "latency improvement", base: []jsonItem{steady}, cur: []jsonItem{pfItem([3]float64{4, 5, 6}, [3]float64{95, 100, 105})}},
		{name: "throughput regression", base: []jsonItem{steady}, cur: []jsonItem{pfItem([3]float64{9, 10, 11}, [3]float64{60, 70, 80})},
			want: []string{"rate_p50 median 100 → 70 (-30.0%, beyond the 25% it may move)"}, metrics: 2},
		{name: "throughput drop within the metric's own noise", base: []jsonItem{steady},
			cur: []jsonItem{pfItem([3]float64{9, 10, 11}, [3]float64{70, 80, 90})}, metrics: 2},
		{name: "throughput improvement", base: []jsonItem{steady}, cur: []jsonItem{pfItem([3]float64{9, 10, 11}, [3]float64{150, 160, 170})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &JSONReport{Items: tt.base}
			cur := &JSONReport{Items: tt.cur, Overall: jsonOverall{FailClose: tt.failClose}}
			got := Compare(base, cur, CompareOptions{MinEffect: 0.10})
			require.Len(t, got.Regressions, len(tt.want), "regressions: %v", got.Regressions)
			for i, w := range tt.want {
				assert.Contains(t, got.Regressions[i].String(), w)
			}
			if tt.metrics > 0 {
				assert.Equal(t, tt.metrics, got.Metrics)
			}
		})
	}
}

func TestCompareSetsAsideBusyHost(t *testing.T) {
	steal := func(pct float64) *float64 { return &pct }
	pf := func(latency [3]float64, stealPct *float64) jsonItem {
		it := pfItem(latency, [3]float64{95, 100, 105})
		it.Checks[0].Outcome, it.Checks[0].HostStealPct = "passed", stealPct
		return it
	}
	// ex is an item whose checks are timing checks when timing is set.
	ex := func(stars *int, outcome string, timing bool, stealPct ...*float64) jsonItem {
		it := jsonItem{ID: "EX-01", Category: "EX", Stars: stars}
		for i, s := range stealPct {
			it.Checks = append(it.Checks, jsonCheck{ID: fmt.Sprintf("EX-01.c%d", i), Outcome: outcome, HostStealPct: s, Timing: timing})
		}
		return it
	}
	tests := []struct {
		name                     string
		base, cur                jsonItem
		regressions, unconfirmed int
	}{
		{"metric on a quiet host", pf([3]float64{9, 10, 11}, nil), pf([3]float64{13, 14, 15}, steal(1)), 1, 0},
		{"metric on a busy host", pf([3]float64{9, 10, 11}, nil), pf([3]float64{13, 14, 15}, steal(12)), 0, 1},
		{"metric, steal unknown", pf([3]float64{9, 10, 11}, nil), pf([3]float64{13, 14, 15}, nil), 1, 0},
		{"stars, every newly failed timing check busy", ex(stars(5), "passed", true, nil, nil), ex(stars(3), "failed", true, steal(9), steal(30)), 0, 1},
		{"stars, one newly failed timing check quiet", ex(stars(5), "passed", true, nil, nil), ex(stars(3), "failed", true, steal(9), steal(2)), 1, 0},
		{"stars, no check newly failed", ex(stars(5), "failed", true, nil), ex(stars(3), "failed", true, steal(50)), 1, 0},
		{"stars, correctness checks on a busy host count", ex(stars(5), "passed", false, nil, nil), ex(stars(3), "failed", false, steal(9), steal(30)), 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(&JSONReport{Items: []jsonItem{tt.base}}, &JSONReport{Items: []jsonItem{tt.cur}}, CompareOptions{MinEffect: 0.1, MaxSteal: 5})
			assert.Len(t, got.Regressions, tt.regressions, "regressions: %v", got.Regressions)
			require.Len(t, got.Unconfirmed, tt.unconfirmed, "unconfirmed: %v", got.Unconfirmed)
			for _, u := range got.Unconfirmed {
				assert.Contains(t, u.Detail, "hypervisor took at least")
			}
		})
	}
	// A fail-close failure counts whatever the host did.
	cur := &JSONReport{Items: []jsonItem{ex(stars(2), "failed", true, steal(40))},
		Overall: jsonOverall{FailClose: []jsonFailClose{{Item: "EX-01", Applies: true, Stars: stars(2), Status: "fail"}}}}
	got := Compare(&JSONReport{Items: []jsonItem{ex(stars(5), "passed", true, nil)}}, cur, CompareOptions{MaxSteal: 5})
	require.Len(t, got.Regressions, 1)
	assert.Equal(t, "fail-close", got.Regressions[0].Kind)
}

// Only regressions that rest on timing checks alone may be rerun; one
// correctness regression among them means no rerun at all.
func TestCompareRerun(t *testing.T) {
	item := func(id string, n int, timing bool, outcome string) jsonItem {
		return jsonItem{ID: id, Category: id[:2], Stars: stars(n), Checks: []jsonCheck{{ID: id + ".c", Outcome: outcome, Timing: timing,
			Reproduce: "go test ./scenarios/" + strings.ToLower(id[:2]) + " -run '^Test" + id[:2] + id[3:] + "$'"}}}
	}
	slowStep := pfItem([3]float64{13, 14, 15}, [3]float64{95, 100, 105})
	steady := pfItem([3]float64{9, 10, 11}, [3]float64{95, 100, 105})
	tests := []struct {
		name      string
		base, cur []jsonItem
		rerun     []string
	}{
		{"a timing check's stars", []jsonItem{item("WF-06", 4, true, "passed")}, []jsonItem{item("WF-06", 3, true, "failed")},
			[]string{"go test ./scenarios/wf -run '^TestWF06$'"}},
		{"a gated median", []jsonItem{steady}, []jsonItem{slowStep}, []string{"go test ./scenarios/pf -run '^TestPF01$'"}},
		{"timing and correctness together", []jsonItem{steady, item("EX-03", 5, false, "passed")},
			[]jsonItem{slowStep, item("EX-03", 4, false, "failed")}, nil},
		{"a correctness check", []jsonItem{item("EX-03", 5, false, "passed")}, []jsonItem{item("EX-03", 4, false, "failed")}, nil},
		{"not measured any more", []jsonItem{item("WF-06", 4, true, "passed")}, []jsonItem{{ID: "WF-06", Category: "WF"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(&JSONReport{Items: tt.base}, &JSONReport{Items: tt.cur}, CompareOptions{MinEffect: 0.1})
			require.NotEmpty(t, got.Regressions)
			assert.Equal(t, tt.rerun, got.Rerun())
		})
	}
}

func TestCompareIgnoresUngatedTimings(t *testing.T) {
	item := func(p50 float64) jsonItem {
		return jsonItem{ID: "EX-01", Category: "EX", Stars: stars(5), Checks: []jsonCheck{{ID: "EX-01.chaos",
			Metrics: map[string]float64{"recovery_s_p50": p50, "recovery_s_p50_lo": p50 - 0.1, "recovery_s_p50_hi": p50 + 0.1}}}}
	}
	got := Compare(&JSONReport{Items: []jsonItem{item(4)}}, &JSONReport{Items: []jsonItem{item(9)}}, CompareOptions{MinEffect: 0.1})
	assert.Empty(t, got.Regressions)
	assert.Zero(t, got.Metrics)
}

func TestReadJSON(t *testing.T) {
	_, err := ReadJSON(strings.NewReader(`{"items": []}`))
	require.ErrorContains(t, err, "field items")
	_, err = ReadJSON(strings.NewReader(`{`))
	require.ErrorContains(t, err, "report.json")
	r, err := ReadJSON(strings.NewReader(`{"items": [{"id": "EX-01", "stars": 4}]}`))
	require.NoError(t, err)
	assert.Equal(t, 4, *r.Items[0].Stars)
}
