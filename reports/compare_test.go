package reports

import (
	"fmt"
	"maps"
	"slices"
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

// withProbe gives every check of it the host probe's medians with their
// intervals; a nil probe leaves it without.
func withProbe(it jsonItem, cpu, fsync *[3]float64) jsonItem {
	it.Checks = slices.Clone(it.Checks)
	for i, c := range it.Checks {
		m := maps.Clone(c.Metrics)
		if m == nil {
			m = map[string]float64{}
		}
		for name, v := range map[string]*[3]float64{"probe_cpu_ms": cpu, "probe_fsync_ms": fsync} {
			if v != nil {
				m[name+"_p50_lo"], m[name+"_p50"], m[name+"_p50_hi"] = v[0], v[1], v[2]
			}
		}
		it.Checks[i].Metrics = m
	}
	return it
}

func TestCompareHostProbe(t *testing.T) {
	p := func(lo, mid, hi float64) *[3]float64 { return &[3]float64{lo, mid, hi} }
	quiet, disk := p(31, 32, 33), p(0.28, 0.30, 0.32)
	steady := pfItem([3]float64{9, 10, 11}, [3]float64{95, 100, 105})
	slowStep := pfItem([3]float64{13, 14, 15}, [3]float64{95, 100, 105})
	// timing is an item whose two checks passed, or newly failed.
	timing := func(stars *int, outcome string, isTiming bool) jsonItem {
		return jsonItem{ID: "PF-02", Category: "PF", Stars: stars, Checks: []jsonCheck{
			{ID: "PF-02.rate-100", Outcome: outcome, Timing: isTiming}, {ID: "PF-02.rate-500", Outcome: outcome, Timing: isTiming}}}
	}
	// mixed has its first check on a slower host, its second on a steady one.
	mixed := withProbe(timing(stars(2), "failed", true), p(42, 45, 48), disk)
	mixed.Checks[1] = withProbe(jsonItem{Checks: mixed.Checks[1:]}, quiet, disk).Checks[0]
	// stolen ran while the hypervisor took 12% of the CPU.
	stolen := func(it jsonItem) jsonItem {
		pct := 12.0
		it.Checks[0].HostStealPct = &pct
		return it
	}
	tests := []struct {
		name        string
		base, cur   jsonItem
		regressions int
		unconfirmed int
		detail      string // in the one regression or unconfirmed; "" for none of "host probe"
		probes      int    // probes the detail names, if not one
	}{
		{"metric, the host slowed", withProbe(steady, quiet, disk), withProbe(slowStep, p(42, 45, 48), disk), 0, 1,
			"; host probe slowed: CPU 32 → 45 ms (+40.6%), fsync 0.3 → 0.3 ms (+0.0%)", 0},
		{"metric, the host held steady", withProbe(steady, quiet, disk), withProbe(slowStep, p(32, 33, 34), p(0.5, 0.6, 0.7)), 1, 0,
			"; host probe steady: CPU 32 → 33 ms (+3.1%), fsync 0.3 → 0.6 ms (+100.0%)", 0},
		{"metric, the host faster", withProbe(steady, quiet, disk), withProbe(slowStep, p(20, 21, 22), disk), 1, 0, "host probe steady: CPU 32 → 21 ms (-34.4%)", 0},
		{"metric, probe apart but under the slowdown", withProbe(steady, quiet, disk), withProbe(slowStep, p(36, 37, 38), disk), 1, 0, "host probe steady: CPU 32 → 37 ms (+15.6%)", 0},
		{"metric, probe slower but intervals overlap", withProbe(steady, quiet, disk), withProbe(slowStep, p(32.5, 45, 60), disk), 1, 0, "host probe steady: CPU 32 → 45 ms", 0},
		{"metric, no probe in the baseline", steady, withProbe(slowStep, p(42, 45, 48), disk), 1, 0, "", 0},
		{"metric, no probe now", withProbe(steady, quiet, disk), slowStep, 1, 0, "", 0},
		{"metric, no fsync probe now", withProbe(steady, quiet, disk), withProbe(slowStep, p(42, 45, 48), nil), 1, 0, "", 0},
		{"stars, every newly failed timing check on a slower host", withProbe(timing(stars(4), "passed", true), quiet, disk),
			withProbe(timing(stars(2), "failed", true), p(42, 45, 48), disk), 0, 1, "host probe slowed: CPU 32 → 45 ms", 0},
		{"stars, timing checks on a steady host", withProbe(timing(stars(4), "passed", true), quiet, disk),
			withProbe(timing(stars(2), "failed", true), quiet, disk), 1, 0, "host probe steady: CPU 32 → 32 ms (+0.0%)", 0},
		{"stars, one newly failed timing check on a steady host", withProbe(timing(stars(4), "passed", true), quiet, disk), mixed, 1, 0,
			"host probe slowed: CPU 32 → 45 ms (+40.6%), fsync 0.3 → 0.3 ms (+0.0%); host probe steady: CPU 32 → 32 ms", 2},
		{"metric, busy host with a steady probe: steal still sets it aside", withProbe(steady, quiet, disk), stolen(withProbe(slowStep, quiet, disk)), 0, 1,
			"hypervisor took at least 12% of the CPU (over 5%); host probe steady", 0},
		{"stars, correctness checks on a slower host count", withProbe(timing(stars(4), "passed", false), quiet, disk),
			withProbe(timing(stars(2), "failed", false), p(42, 45, 48), disk), 1, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(&JSONReport{Items: []jsonItem{tt.base}}, &JSONReport{Items: []jsonItem{tt.cur}}, CompareOptions{MinEffect: 0.1, MaxSteal: 5, MinProbeSlowdown: 1.25})
			require.Len(t, got.Regressions, tt.regressions, "regressions: %v", got.Regressions)
			require.Len(t, got.Unconfirmed, tt.unconfirmed, "unconfirmed: %v", got.Unconfirmed)
			r := slices.Concat(got.Regressions, got.Unconfirmed)[0]
			if tt.detail == "" {
				assert.NotContains(t, r.Detail, "host probe")
				return
			}
			assert.Contains(t, r.Detail, tt.detail)
			// Checks of one series share a probe, which is said once.
			assert.Equal(t, max(tt.probes, 1), strings.Count(r.Detail, "host probe"), r.Detail)
		})
	}
}

// Without a probe on both sides, or with MinProbeSlowdown 0, Compare finds
// exactly what it found before the probe existed.
func TestCompareHostProbeAbsent(t *testing.T) {
	base := []jsonItem{pfItem([3]float64{9, 10, 11}, [3]float64{95, 100, 105})}
	cur := []jsonItem{pfItem([3]float64{13, 14, 15}, [3]float64{60, 70, 80})}
	o := CompareOptions{MinEffect: 0.1, MaxSteal: 5, MinProbeSlowdown: 1.25}
	want := Compare(&JSONReport{Items: base}, &JSONReport{Items: cur}, o)
	require.Len(t, want.Regressions, 2)
	slow, quiet := &[3]float64{42, 45, 48}, &[3]float64{31, 32, 33}
	disk := &[3]float64{0.28, 0.30, 0.32}
	for name, tt := range map[string]struct {
		base, cur []jsonItem
		o         CompareOptions
	}{
		"probe only now":         {base, []jsonItem{withProbe(cur[0], slow, disk)}, o},
		"probe only in baseline": {[]jsonItem{withProbe(base[0], quiet, disk)}, cur, o},
		"probe off": {[]jsonItem{withProbe(base[0], quiet, disk)}, []jsonItem{withProbe(cur[0], slow, disk)},
			CompareOptions{MinEffect: 0.1, MaxSteal: 5}},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, want, Compare(&JSONReport{Items: tt.base}, &JSONReport{Items: tt.cur}, tt.o))
		})
	}
}

// A fail-close failure counts however slow the host probe says the host was.
func TestCompareHostProbeFailClose(t *testing.T) {
	item := func(n int, outcome string, cpu *[3]float64) jsonItem {
		return withProbe(jsonItem{ID: "EX-01", Category: "EX", Stars: stars(n), Checks: []jsonCheck{{ID: "EX-01.c", Outcome: outcome, Timing: true}}},
			cpu, &[3]float64{0.28, 0.30, 0.32})
	}
	cur := &JSONReport{Items: []jsonItem{item(2, "failed", &[3]float64{42, 45, 48})},
		Overall: jsonOverall{FailClose: []jsonFailClose{{Item: "EX-01", Applies: true, Stars: stars(2), Status: "fail"}}}}
	got := Compare(&JSONReport{Items: []jsonItem{item(5, "passed", &[3]float64{31, 32, 33})}}, cur, CompareOptions{MinProbeSlowdown: 1.25})
	require.Len(t, got.Regressions, 1)
	assert.Equal(t, "fail-close", got.Regressions[0].Kind)
	require.Len(t, got.Unconfirmed, 1, "the drop in stars itself rests on a timing check on a slower host")
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

// A gated median that moved the worse way, intervals apart, but inside the
// share it may move is no regression: Compare lists it as Slower, with the
// host probe's verdict where both runs carry one.
func TestCompareSlower(t *testing.T) {
	p := func(lo, mid, hi float64) *[3]float64 { return &[3]float64{lo, mid, hi} }
	quiet, slow, disk := p(28, 29, 30), p(40, 44, 50), p(0.2, 0.3, 0.4)
	base := pfItem([3]float64{9, 10, 11}, [3]float64{95, 100, 105})
	tests := []struct {
		name       string
		base, cur  jsonItem
		slower     int
		regression int
		detail     string
	}{
		{"rate down 15%, inside its 25%: slower, no probe", base, pfItem([3]float64{9, 10, 11}, [3]float64{80, 85, 90}), 1, 0, "(-15.0%, inside the 25% it may move)"},
		{"slower on a slower host", withProbe(base, quiet, disk), withProbe(pfItem([3]float64{9, 10, 11}, [3]float64{80, 85, 90}), slow, disk), 1, 0, "host probe slowed: CPU 29 → 44 ms"},
		{"slower on a steady host", withProbe(base, quiet, disk), withProbe(pfItem([3]float64{9, 10, 11}, [3]float64{80, 85, 90}), quiet, disk), 1, 0, "host probe steady"},
		{"intervals overlap: nothing", base, pfItem([3]float64{9, 10, 11}, [3]float64{90, 97, 104}), 0, 0, ""},
		{"faster: nothing", base, pfItem([3]float64{8, 8.5, 8.9}, [3]float64{110, 115, 120}), 0, 0, ""},
		{"beyond its 25%: a regression, not slower", base, pfItem([3]float64{9, 10, 11}, [3]float64{50, 55, 60}), 0, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(&JSONReport{Items: []jsonItem{tt.base}}, &JSONReport{Items: []jsonItem{tt.cur}}, CompareOptions{MinEffect: 0.2, MinProbeSlowdown: 1.25})
			require.Len(t, got.Slower, tt.slower)
			assert.Len(t, got.Regressions, tt.regression)
			if tt.slower > 0 {
				assert.Contains(t, got.Slower[0].Detail, tt.detail)
			}
		})
	}
}
