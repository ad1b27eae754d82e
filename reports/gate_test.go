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
		{name: "control not measured, not required", duration: "min-h", recs: with(good, controlsFailed[:1], []evidence.Record{
			control("VR-01.no-getversion", evidence.NotMeasured, "external server")})},
		{name: "control not measured, required", duration: "min-h", requireControls: true, recs: with(good, controlsFailed[:1], []evidence.Record{
			control("VR-01.no-getversion", evidence.NotMeasured, "external server")}),
			want: []string{"negative control VR-01.no-getversion (VR-01) was not measured: external server"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Gate(build(t, profile(tc.duration), tc.recs...), tc.requireControls)
			assert.Len(t, got, len(tc.want), "problems: %q", got)
			for i, w := range tc.want {
				if i < len(got) {
					assert.Contains(t, got[i], w)
				}
			}
		})
	}
}
