package reports

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/evidence"
)

var generated = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// testCategories and testCatalog are a three-item catalog: EX-01 is fail-close
// with a negative control and a timing check at level 5, VR-01 is fail-close
// for long durations with its own scale and a declared level 5, DX-03 warns
// at 2 and has a pattern check at level 3.
func testCategories() []criteria.Category {
	return []criteria.Category{
		{ID: "EX", NameEN: "Execution semantics", NameJA: "実行セマンティクス", Axis: "正しさ"},
		{ID: "VR", NameEN: "Versioning", NameJA: "バージョニング", Axis: "進化性"},
		{ID: "DX", NameEN: "Developer experience", NameJA: "開発者体験", Axis: "生産性"},
	}
}

func testCatalog() []criteria.Item {
	ladder := func(item string) []criteria.Level {
		var lv []criteria.Level
		for s := 2; s <= 5; s++ {
			lv = append(lv, criteria.Level{
				Stars:     s,
				SummaryEN: fmt.Sprintf("%s summary %d", item, s),
				SummaryJA: fmt.Sprintf("%s 概要 %d", item, s),
				Checks:    []criteria.Check{{ID: fmt.Sprintf("%s.l%d", item, s), TitleEN: fmt.Sprintf("title %d", s), TitleJA: fmt.Sprintf("タイトル %d", s)}},
			})
		}
		return lv
	}
	vr := ladder("VR-01")
	vr[3] = criteria.Level{Stars: 5, SummaryEN: "automatic routing", SummaryJA: "自動ルーティング",
		Declared: &criteria.Declaration{Claim: "worker deployments drain automatically", Source: "https://docs.temporal.io/worker-deployments",
			GA: "the page marks no pre-release stage"}}
	ex := ladder("EX-01")
	ex[3].Checks[0].Timing = true
	dx := ladder("DX-03")
	dx[1].Checks[0].Pattern = true
	items := []criteria.Item{
		{ID: "EX-01", Category: "EX", NameEN: "Progress guarantee", NameJA: "進行保証",
			EvaluatesEN: "work finishes after crashes", EvaluatesJA: "クラッシュ後も完了する",
			FailClose: criteria.FailCloseAlways, Levels: ex,
			Controls: []criteria.Check{{ID: "EX-01.inmem-restart", TitleEN: "in-memory server restart loses runs", TitleJA: "インメモリサーバー再起動で実行が失われる",
				Guards: "EX-01.l4"}}},
		{ID: "VR-01", Category: "VR", NameEN: "Workflow versioning", NameJA: "ワークフローバージョニング",
			EvaluatesEN: "old runs survive new code", EvaluatesJA: "新コードでも旧実行が継続",
			FailClose: criteria.FailCloseLongRunning, Levels: vr,
			Scale: []string{"none", "drain only", "in-code branches", "routing by worker", "automatic routing"},
			Controls: []criteria.Check{{ID: "VR-01.no-getversion", TitleEN: "v2 without GetVersion", TitleJA: "GetVersionなしのv2",
				Guards: "VR-01.l3"}}},
		{ID: "DX-03", Category: "DX", NameEN: "Local development", NameJA: "ローカル開発",
			EvaluatesEN: "time to a running dev server", EvaluatesJA: "開発サーバー起動までの時間",
			WarnAtOrBelow: 2, Levels: dx,
			PatternEN: "a pattern of ours counts at most level 3", PatternJA: "自前のパターンはレベル3まで"},
	}
	return items
}

func profile(duration string) criteria.Profile {
	return criteria.Profile{Name: "test", Duration: duration, SideEffects: "restricted-writes", Deployment: "self-hosted-dev",
		Scale: "~100", Determinism: "includes-llm", Language: "go"}
}

func rec(check string, out evidence.Outcome, detail string) evidence.Record {
	return evidence.Record{Check: check, Item: check[:5], Outcome: out, Detail: detail,
		Reproduce: "go test ./scenarios/" + check[:2] + " -run Test" + check[6:], Started: generated, Duration: 0.5, Predicate: "holds"}
}

func control(check string, out evidence.Outcome, detail string) evidence.Record {
	r := rec(check, out, detail)
	r.Control = true
	return r
}

// passUpTo records the checks of item's levels 2..n as passed and those of
// level n+1 as failed; declared levels have no checks to record.
func passUpTo(item string, n int) []evidence.Record {
	var out []evidence.Record
	for _, it := range testCatalog() {
		if it.ID != item {
			continue
		}
		for _, lv := range it.Levels {
			for _, c := range lv.Checks {
				switch {
				case lv.Stars <= n:
					out = append(out, rec(c.ID, evidence.Passed, "ok"))
				case lv.Stars == n+1:
					out = append(out, rec(c.ID, evidence.Failed, "observed a failure"))
				}
			}
		}
	}
	return out
}

func build(t *testing.T, p criteria.Profile, recs ...evidence.Record) *Report {
	t.Helper()
	r, err := Build(testCatalog(), testCategories(), p, &evidence.Set{Records: recs}, generated)
	require.NoError(t, err)
	return r
}

func findItem(t *testing.T, r *Report, id string) Item {
	t.Helper()
	for _, it := range r.Items() {
		if it.Rating.Item.ID == id {
			return it
		}
	}
	t.Fatalf("item %s not in report", id)
	return Item{}
}

func TestBuild(t *testing.T) {
	recs := append(passUpTo("EX-01", 4), control("EX-01.inmem-restart", evidence.Failed, "2 of 5 runs lost"))
	recs = append(recs, passUpTo("VR-01", 3)...)
	set := &evidence.Set{Records: recs, Environments: []evidence.Environment{{Package: "vr"}, {Package: "ex"}}}
	r, err := Build(testCatalog(), testCategories(), profile("min-h"), set, generated)
	require.NoError(t, err)

	assert.Equal(t, generated, r.Generated)
	require.Len(t, r.Environments, 2)
	assert.Equal(t, "ex", r.Environments[0].Package, "environments are sorted by package")

	require.Len(t, r.Categories, 3)
	for _, tc := range []struct {
		cat                         string
		items, good, bad, unmeasure int
	}{
		{"EX", 1, 1, 0, 0},
		{"VR", 1, 1, 0, 0},
		{"DX", 1, 0, 0, 1},
	} {
		var c Category
		for _, cc := range r.Categories {
			if cc.ID == tc.cat {
				c = cc
			}
		}
		assert.Len(t, c.Items, tc.items, tc.cat)
		assert.Equal(t, tc.good, c.Good, tc.cat)
		assert.Equal(t, tc.bad, c.NotGood, tc.cat)
		assert.Equal(t, tc.unmeasure, c.NotMeasured, tc.cat)
	}

	ex := findItem(t, r, "EX-01")
	assert.Equal(t, 4, ex.Rating.Stars)
	require.NotNil(t, ex.FailClose)
	assert.Equal(t, "pass", ex.FailClose.Status)
	require.Len(t, ex.Checks, 5, "four ladder checks and one control")
	assert.Equal(t, 2, ex.Checks[0].Level)
	assert.Equal(t, "ok", ex.Checks[0].Record.Detail)
	assert.Equal(t, criteria.Failed, ex.Checks[3].Outcome)
	ctl := ex.Checks[4]
	assert.True(t, ctl.Control)
	assert.Equal(t, 0, ctl.Level)
	assert.Equal(t, criteria.Failed, ctl.Outcome)

	vr := findItem(t, r, "VR-01")
	assert.Equal(t, 3, vr.Rating.Stars, "level 4 failed, so the declared level 5 does not count")
	assert.Equal(t, "measured", vr.Rating.Basis)
	assert.Equal(t, NotRun, vr.Checks[len(vr.Checks)-1].Outcome, "the control did not run")

	dx := findItem(t, r, "DX-03")
	assert.False(t, dx.Rating.Measured())
	assert.Nil(t, dx.FailClose)
	assert.Equal(t, NotRun, dx.Checks[0].Outcome)
	assert.Nil(t, dx.Checks[0].Record)

	assert.Equal(t, 2, r.Overall.Measured)
	assert.Equal(t, 3, r.Overall.Total)
	assert.Equal(t, 3, r.Overall.Stars, "floor of the mean 3.5")
}

func TestBuildDeclaredLevel(t *testing.T) {
	r := build(t, profile("min-h"), passUpTo("VR-01", 4)...)
	vr := findItem(t, r, "VR-01")
	assert.Equal(t, 5, vr.Rating.Stars)
	assert.Equal(t, "measured+declared", vr.Rating.Basis)
}

func TestBuildRejectsRecordsTheCatalogDoesNotKnow(t *testing.T) {
	wrongItem := rec("EX-01.l2", evidence.Passed, "ok")
	wrongItem.Item = "EX-02"
	for _, tc := range []struct {
		name string
		rec  evidence.Record
		want string
	}{
		{"unknown check", rec("EX-01.typo", evidence.Passed, "ok"), `"EX-01.typo"`},
		{"unknown item", rec("OP-02.crud", evidence.Passed, "ok"), `"OP-02.crud"`},
		{"wrong item", wrongItem, "catalog puts it under EX-01"},
		{"control not flagged", rec("EX-01.inmem-restart", evidence.Failed, "lost"), "control=false"},
		{"ladder check flagged as control", control("EX-01.l2", evidence.Failed, "x"), "control=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(testCatalog(), testCategories(), profile("min-h"), &evidence.Set{Records: []evidence.Record{tc.rec}}, generated)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), tc.rec.Check)
		})
	}
}

func TestBuildRejectsItemOutsideCategories(t *testing.T) {
	_, err := Build(testCatalog(), testCategories()[:1], profile("min-h"), &evidence.Set{}, generated)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "VR-01")
}

// A check recorded twice: a timing check is rated on its last attempt, a
// correctness check on its first failure; both keep every attempt.
func TestBuildAttempts(t *testing.T) {
	first := func(check string, out evidence.Outcome) evidence.Record {
		r := rec(check, out, "attempt 1: "+string(out))
		r.Attempt = 1
		return r
	}
	second := func(check string, out evidence.Outcome) evidence.Record {
		r := rec(check, out, "attempt 2: "+string(out))
		r.Attempt = 2
		return r
	}
	tests := []struct {
		name     string
		check    string
		attempts []evidence.Record
		want     string
	}{
		{"timing check failed, then passed", "EX-01.l5", []evidence.Record{first("EX-01.l5", evidence.Failed), second("EX-01.l5", evidence.Passed)}, criteria.Passed},
		{"timing check passed, then failed", "EX-01.l5", []evidence.Record{first("EX-01.l5", evidence.Passed), second("EX-01.l5", evidence.Failed)}, criteria.Failed},
		{"correctness check failed, then passed", "EX-01.l4", []evidence.Record{first("EX-01.l4", evidence.Failed), second("EX-01.l4", evidence.Passed)}, criteria.Failed},
		{"correctness check passed twice", "EX-01.l4", []evidence.Record{first("EX-01.l4", evidence.Passed), second("EX-01.l4", evidence.Passed)}, criteria.Passed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := passUpTo("EX-01", 3)
			recs = append(recs, tt.attempts[len(tt.attempts)-1])
			r, err := Build(testCatalog(), testCategories(), profile("min-h"),
				&evidence.Set{Records: recs, Attempts: map[string][]evidence.Record{tt.check: tt.attempts}}, generated)
			require.NoError(t, err)
			it := findItem(t, r, "EX-01")
			var got Check
			for _, c := range it.Checks {
				if c.ID == tt.check {
					got = c
				}
			}
			assert.Equal(t, tt.want, got.Outcome)
			assert.Len(t, got.Attempts, len(tt.attempts))

			var md, js bytes.Buffer
			require.NoError(t, WriteMarkdown(&md, r, "en"))
			assert.Contains(t, md.String(), "attempt 1 ("+string(tt.attempts[0].Outcome)+"): attempt 1: "+string(tt.attempts[0].Outcome))
			assert.Contains(t, md.String(), "attempt 2 ("+string(tt.attempts[1].Outcome)+"): attempt 2: "+string(tt.attempts[1].Outcome))
			require.NoError(t, WriteJSON(&js, r))
			assert.Contains(t, js.String(), `"detail": "attempt 1: `+string(tt.attempts[0].Outcome)+`"`)
		})
	}
}

func TestBuildUnreachedLevel(t *testing.T) {
	cat := testCatalog()
	cat[2].Levels[3] = criteria.Level{Stars: 5, SummaryEN: "s5", SummaryJA: "五", Unreached: "the feature is in preview"}
	recs := []evidence.Record{rec("DX-03.l2", evidence.Passed, "ok"), rec("DX-03.l3", evidence.Passed, "ok"), rec("DX-03.l4", evidence.Passed, "ok")}
	r, err := Build(cat, testCategories(), profile("min-h"), &evidence.Set{Records: recs}, generated)
	require.NoError(t, err)
	it := findItem(t, r, "DX-03")
	assert.Equal(t, 4, it.Rating.Stars)
	assert.Equal(t, "level 5 unreached: the feature is in preview", it.Rating.Reason)
	var md bytes.Buffer
	require.NoError(t, WriteMarkdown(&md, r, "en"))
	assert.Contains(t, md.String(), "**unreached**: the feature is in preview")
}
