package reports

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/durabench/durabench/harness/evidence"
)

func TestGate(t *testing.T) {
	good := append(passUpTo("EX-01", 5), passUpTo("VR-01", 4)...)
	controlsFailed := []evidence.Record{
		control("EX-01.inmem-restart", evidence.Failed, "2 of 5 runs lost"),
		control("VR-01.no-getversion", evidence.Failed, "nondeterminism error"),
	}
	with := func(parts ...[]evidence.Record) []evidence.Record {
		var out []evidence.Record
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name            string
		duration        string
		recs            []evidence.Record
		requireControls bool
		waivers         []Waiver
		want            []string // substrings, one per expected problem
	}{
		{name: "all good", duration: "min-h", recs: with(good, controlsFailed), requireControls: true},
		{name: "fail-close item rates 2", duration: "min-h", recs: with(passUpTo("EX-01", 2), passUpTo("VR-01", 4), controlsFailed),
			want: []string{"fail-close item EX-01 (Progress guarantee) rates 2: level 3 failed: [EX-01.l3]"}},
		{name: "fail-close item rates 1", duration: "min-h", recs: with(passUpTo("EX-01", 1), passUpTo("VR-01", 4)),
			want: []string{"fail-close item EX-01 (Progress guarantee) rates 1"}},
		{name: "VR-01 at 2 is a bonus for short runs", duration: "ms-s", recs: with(good[:4], passUpTo("VR-01", 2))},
		{name: "VR-01 at 2 fails long runs", duration: "min-h", recs: with(good[:4], passUpTo("VR-01", 2)),
			want: []string{"fail-close item VR-01"}},
		{name: "fail-close not measured is no gate problem", duration: "min-h", recs: passUpTo("VR-01", 4)},
		{name: "control passed", duration: "min-h", recs: with(good, []evidence.Record{
			control("EX-01.inmem-restart", evidence.Passed, "all 5 runs completed"), controlsFailed[1]}),
			want: []string{"negative control EX-01.inmem-restart (EX-01) passed but must fail: all 5 runs completed"}},
		{name: "control missing, not required", duration: "min-h", recs: with(good, controlsFailed[:1])},
		{name: "control missing, required", duration: "min-h", recs: with(good, controlsFailed[:1]), requireControls: true,
			want: []string{"negative control VR-01.no-getversion (VR-01) did not run"}},
		{name: "control of an item that did not run at all, required", duration: "ms-s", requireControls: true,
			recs: with(passUpTo("EX-01", 5), controlsFailed[:1])},
		{name: "fail-close not measured, required", duration: "min-h", requireControls: true, recs: with(good[:4], controlsFailed[:1]),
			want: []string{"fail-close item VR-01 (Workflow versioning) is not measured (level 2 not measured: [VR-01.l2]): measure it, or waive it with a reason in reports/waivers.yaml",
				"negative control VR-01.no-getversion (VR-01) did not run"}},
		{name: "fail-close not measured, waived", duration: "min-h", requireControls: true, recs: with(good[:4], controlsFailed[:1]),
			waivers: []Waiver{{Item: "VR-01", Reason: "not built yet"}}},
		{name: "a waiver does not excuse a rating of 2", duration: "min-h", requireControls: true,
			recs: with(good[:4], passUpTo("VR-01", 2), controlsFailed), waivers: []Waiver{{Item: "VR-01", Reason: "not built yet"}},
			want: []string{"fail-close item VR-01 (Workflow versioning) rates 2", "waiver for VR-01 in reports/waivers.yaml is no longer needed"}},
		{name: "a waiver does not excuse a control that passed", duration: "min-h", requireControls: true,
			recs:    with(good, controlsFailed[:1], []evidence.Record{control("VR-01.no-getversion", evidence.Passed, "replayed fine")}),
			waivers: []Waiver{{Item: "VR-01", Reason: "not built yet"}},
			want:    []string{"negative control VR-01.no-getversion (VR-01) passed but must fail"}},
		{name: "a waiver no longer needed", duration: "min-h", requireControls: true, recs: with(good, controlsFailed),
			waivers: []Waiver{{Item: "VR-01", Reason: "not built yet"}},
			want:    []string{"waiver for VR-01 in reports/waivers.yaml is no longer needed"}},
		{name: "control without a predicate", duration: "min-h", recs: with(good, controlsFailed[1:], []evidence.Record{
			func() evidence.Record { r := controlsFailed[0]; r.Predicate = ""; return r }()}),
			want: []string{"negative control EX-01.inmem-restart (EX-01) decided its outcome without a named predicate; it must run the predicate of EX-01.l4"}},
		{name: "control runs another predicate", duration: "min-h", recs: with(good, controlsFailed[1:], []evidence.Record{
			func() evidence.Record { r := controlsFailed[0]; r.Predicate = "somethingElse"; return r }()}),
			want: []string{`negative control EX-01.inmem-restart (EX-01) ran predicate "somethingElse", but the check it guards, EX-01.l4, was decided by "holds"`}},
		{name: "control not measured, not required", duration: "min-h", recs: with(good, controlsFailed[:1], []evidence.Record{
			control("VR-01.no-getversion", evidence.NotMeasured, "external server")})},
		{name: "control not measured, required", duration: "min-h", requireControls: true, recs: with(good, controlsFailed[:1], []evidence.Record{
			control("VR-01.no-getversion", evidence.NotMeasured, "external server")}),
			want: []string{"negative control VR-01.no-getversion (VR-01) was not measured: external server"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := build(t, profile(tc.duration), tc.recs...)
			r.Waivers = tc.waivers
			got := Gate(r, tc.requireControls)
			assert.Len(t, got, len(tc.want), "problems: %q", got)
			for i, w := range tc.want {
				if i < len(got) {
					assert.Contains(t, got[i], w)
				}
			}
		})
	}
}
