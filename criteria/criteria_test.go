package criteria

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const defaultProfile = "../fixtures/profiles/default.yaml"

func itemByID(t *testing.T, items []Item, id string) Item {
	t.Helper()
	i := slices.IndexFunc(items, func(it Item) bool { return it.ID == id })
	require.GreaterOrEqual(t, i, 0, "item %s not in catalog", id)
	return items[i]
}

func checkIDs(cs []Check) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

func TestCatalogIsValid(t *testing.T) {
	require.NoError(t, Validate(Catalog()))
}

func TestCatalogShape(t *testing.T) {
	items := Catalog()
	require.Len(t, items, 58)

	counts := map[string]int{}
	for _, it := range items {
		counts[it.Category]++
	}
	assert.Equal(t, map[string]int{
		"EX": 7, "RT": 4, "WF": 6, "SG": 4, "VR": 4, "CP": 4, "PF": 3, "OP": 7, "OB": 6, "DX": 7, "AI": 6,
	}, counts)

	cats := Categories()
	require.Len(t, cats, 11)
	order := map[string]int{}
	for i, c := range cats {
		assert.NotEmpty(t, c.NameEN, c.ID)
		assert.NotEmpty(t, c.NameJA, c.ID)
		assert.NotEmpty(t, c.Axis, c.ID)
		assert.Positive(t, counts[c.ID], "category %s has no item", c.ID)
		order[c.ID] = i
	}
	assert.Len(t, counts, len(cats), "every item's category is listed in Categories")
	assert.True(t, slices.IsSortedFunc(items, func(a, b Item) int {
		if d := order[a.Category] - order[b.Category]; d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	}), "catalog is in id order")
}

func TestCatalogRules(t *testing.T) {
	failClose := map[string]FailClose{}
	scales := map[string]int{}
	warns := map[string]int{}
	for _, it := range Catalog() {
		if it.FailClose != FailCloseNever {
			failClose[it.ID] = it.FailClose
			assert.NotEmpty(t, it.Controls, "%s has no negative control", it.ID)
		}
		if it.Scale != nil {
			scales[it.ID] = len(it.Scale)
			for _, s := range it.Scale {
				assert.Contains(t, s, " / ", "%s scale entries read \"English / 日本語\"", it.ID)
			}
		}
		if it.WarnAtOrBelow != 0 {
			warns[it.ID] = it.WarnAtOrBelow
		}
		for _, lv := range it.Levels {
			if lv.Declared != nil {
				assert.True(t, strings.HasPrefix(lv.Declared.Source, "https://docs.temporal.io/"),
					"%s level %d cites %q", it.ID, lv.Stars, lv.Declared.Source)
			}
		}
	}
	assert.Equal(t, map[string]FailClose{
		"EX-01": FailCloseAlways, "EX-03": FailCloseAlways, "RT-01": FailCloseAlways, "OP-02": FailCloseAlways,
		"VR-01": FailCloseLongRunning,
	}, failClose)
	assert.Equal(t, map[string]int{"VR-01": 5, "AI-02": 5}, scales)
	assert.Equal(t, map[string]int{"DX-03": 2}, warns)
}

// The EX-01 and EX-03 check ids are implemented elsewhere under exactly these
// names, as are the controls of every fail-close item.
func TestCatalogAgreedCheckIDs(t *testing.T) {
	items := Catalog()
	ladders := map[string][][]string{
		"EX-01": {
			{"EX-01.workflow-completes"},
			{"EX-01.worker-sigkill"},
			{"EX-01.server-sigkill", "EX-01.timer-during-outage"},
			{"EX-01.chaos"},
		},
		"EX-03": {
			{"EX-03.duplicate-start-rejected"},
			{"EX-03.conflict-policies", "EX-03.reuse-policies"},
			{"EX-03.concurrent-starts", "EX-03.request-id-dedup"},
			{"EX-03.with-start-idempotent"},
		},
	}
	for id, want := range ladders {
		it := itemByID(t, items, id)
		for i, lv := range it.Levels {
			assert.Equal(t, want[i], checkIDs(lv.Checks), "%s level %d", id, lv.Stars)
		}
	}
	controls := map[string]string{
		"EX-01": "EX-01.control-inmemory-restart",
		"EX-03": "EX-03.control-allow-duplicate",
		"RT-01": "RT-01.control-single-attempt",
		"VR-01": "VR-01.control-unversioned-change",
		"OP-02": "OP-02.control-wrong-namespace",
	}
	for id, want := range controls {
		assert.Equal(t, []string{want}, checkIDs(itemByID(t, items, id).Controls), id)
	}
}

func TestCatalogReturnsFreshCopies(t *testing.T) {
	a := Catalog()
	a[0].Levels[0].Checks[0].ID = "changed"
	assert.Equal(t, "EX-01.workflow-completes", Catalog()[0].Levels[0].Checks[0].ID)
}

// fixture is a small valid catalog the Validate and Rate tables mutate.
func fixture() []Item {
	return []Item{
		{
			ID: "EX-01", Category: "EX", NameEN: "n", NameJA: "名", EvaluatesEN: "e", EvaluatesJA: "評",
			FailClose: FailCloseAlways,
			Levels: []Level{
				level(2, "s2", "二", Check{ID: "EX-01.a", TitleEN: "a", TitleJA: "あ"}),
				level(3, "s3", "三", Check{ID: "EX-01.b", TitleEN: "b", TitleJA: "い"}),
				level(4, "s4", "四", Check{ID: "EX-01.c", TitleEN: "c", TitleJA: "う"}, Check{ID: "EX-01.d", TitleEN: "d", TitleJA: "え"}),
				level(5, "s5", "五", Check{ID: "EX-01.e", TitleEN: "e", TitleJA: "お"}),
			},
			Controls: []Check{{"EX-01.control", "ctl", "対照"}},
		},
		{
			ID: "DX-02", Category: "DX", NameEN: "n", NameJA: "名", EvaluatesEN: "e", EvaluatesJA: "評",
			Levels: []Level{
				level(2, "s2", "二", Check{ID: "DX-02.a", TitleEN: "a", TitleJA: "あ"}),
				level(3, "s3", "三", Check{ID: "DX-02.b", TitleEN: "b", TitleJA: "い"}),
				declared(4, "s4", "四", "claim", "https://docs.temporal.io/develop"),
				declared(5, "s5", "五", "claim", "https://docs.temporal.io/develop"),
			},
		},
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(items []Item) []Item
		want   []string // substrings of the error: the item and the field
	}{
		{"bad item id", func(it []Item) []Item { it[0].ID = "EX-1"; return it }, []string{`"EX-1"`, "ID"}},
		{"unknown category prefix", func(it []Item) []Item { it[0].ID = "ZZ-01"; return it }, []string{"ZZ-01", "ID"}},
		{"duplicate item", func(it []Item) []Item { return append(it, it[1]) }, []string{"DX-02", "ID is a duplicate"}},
		{"category mismatch", func(it []Item) []Item { it[0].Category = "RT"; return it }, []string{"EX-01", "Category"}},
		{"missing Japanese name", func(it []Item) []Item { it[0].NameJA = ""; return it }, []string{"EX-01", "NameJA"}},
		{"missing English evaluates", func(it []Item) []Item { it[1].EvaluatesEN = ""; return it }, []string{"DX-02", "EvaluatesEN"}},
		{"unknown fail-close rule", func(it []Item) []Item { it[1].FailClose = "sometimes"; return it }, []string{"DX-02", "FailClose"}},
		{"warning threshold out of range", func(it []Item) []Item { it[1].WarnAtOrBelow = 5; return it }, []string{"DX-02", "WarnAtOrBelow"}},
		{"scale of four", func(it []Item) []Item { it[1].Scale = []string{"a", "b", "c", "d"}; return it }, []string{"DX-02", "Scale"}},
		{"empty scale entry", func(it []Item) []Item { it[1].Scale = []string{"a", "b", "", "d", "e"}; return it }, []string{"DX-02", "Scale", "3 stars"}},
		{"fail-close without control", func(it []Item) []Item { it[0].Controls = nil; return it }, []string{"EX-01", "Controls"}},
		{"three levels", func(it []Item) []Item { it[0].Levels = it[0].Levels[:3]; return it }, []string{"EX-01", "Levels"}},
		{"levels out of order", func(it []Item) []Item {
			it[0].Levels[1], it[0].Levels[2] = it[0].Levels[2], it[0].Levels[1]
			return it
		}, []string{"EX-01", "Levels out of order"}},
		{"missing Japanese summary", func(it []Item) []Item { it[0].Levels[2].SummaryJA = ""; return it }, []string{"EX-01", "level 4", "SummaryJA"}},
		{"measured level without checks", func(it []Item) []Item { it[0].Levels[1].Checks = nil; return it }, []string{"EX-01", "level 3", "Checks"}},
		{"declared without source", func(it []Item) []Item { it[1].Levels[2].Declared.Source = ""; return it }, []string{"DX-02", "level 4", "Source"}},
		{"declared without claim", func(it []Item) []Item { it[1].Levels[3].Declared.Claim = ""; return it }, []string{"DX-02", "level 5", "Claim"}},
		{"declared level 2", func(it []Item) []Item {
			it[1].Levels[0] = declared(2, "s", "二", "c", "https://docs.temporal.io/")
			return it
		}, []string{"DX-02", "level 2", "measured"}},
		{"declared below measured", func(it []Item) []Item {
			it[1].Levels[3] = level(5, "s", "五", Check{ID: "DX-02.z", TitleEN: "z", TitleJA: "ぜ"})
			return it
		}, []string{"DX-02", "level 5", "Declared level 4"}},
		{"declared level with checks", func(it []Item) []Item {
			it[1].Levels[3].Checks = []Check{{"DX-02.z", "z", "ぜ"}}
			return it
		}, []string{"DX-02", "level 5", "Checks"}},
		{"duplicate check", func(it []Item) []Item {
			it[0].Levels[2].Checks[1] = it[0].Levels[0].Checks[0]
			return it
		}, []string{"EX-01", "EX-01.a", "duplicate"}},
		{"control repeats a check", func(it []Item) []Item { it[0].Controls[0].ID = "EX-01.e"; return it }, []string{"EX-01", "EX-01.e", "duplicate"}},
		{"check of another item", func(it []Item) []Item { it[0].Levels[0].Checks[0].ID = "RT-01.a"; return it }, []string{"EX-01", "RT-01.a", "check ID"}},
		{"check id not kebab", func(it []Item) []Item { it[0].Levels[0].Checks[0].ID = "EX-01.Bad_Name"; return it }, []string{"EX-01", "check ID"}},
		{"check without Japanese title", func(it []Item) []Item { it[0].Levels[3].Checks[0].TitleJA = ""; return it }, []string{"EX-01", "EX-01.e", "TitleJA"}},
		{"control without English title", func(it []Item) []Item { it[0].Controls[0].TitleEN = ""; return it }, []string{"EX-01", "EX-01.control", "TitleEN"}},
	}
	require.NoError(t, Validate(fixture()))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.mutate(fixture()))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestRate(t *testing.T) {
	measured, withDeclared := fixture()[0], fixture()[1]
	tests := []struct {
		name      string
		item      Item
		obs       Outcomes
		stars     int
		basis     string
		reason    string // substring; "" means the reason must be empty
		levelStat []string
	}{
		{"nothing measured", measured, Outcomes{}, 0, "not measured", "level 2 not measured",
			[]string{NotMeasured, NotMeasured, NotMeasured, NotMeasured}},
		{"level 2 explicitly not measured", measured, Outcomes{"EX-01.a": NotMeasured, "EX-01.b": Passed}, 0, "not measured", "level 2 not measured: [EX-01.a]",
			[]string{NotMeasured, Passed, NotMeasured, NotMeasured}},
		{"level 2 failed", measured, Outcomes{"EX-01.a": Failed, "EX-01.b": Passed}, 1, "measured", "level 2 failed: [EX-01.a]",
			[]string{Failed, Passed, NotMeasured, NotMeasured}},
		{"all passed", measured, Outcomes{"EX-01.a": Passed, "EX-01.b": Passed, "EX-01.c": Passed, "EX-01.d": Passed, "EX-01.e": Passed}, 5, "measured", "",
			[]string{Passed, Passed, Passed, Passed}},
		{"level 4 failed", measured, Outcomes{"EX-01.a": Passed, "EX-01.b": Passed, "EX-01.c": Passed, "EX-01.d": Failed, "EX-01.e": Passed}, 3, "measured", "level 4 failed: [EX-01.d]",
			[]string{Passed, Passed, Failed, Passed}},
		{"level 3 not measured, level 4 passed", measured, Outcomes{"EX-01.a": Passed, "EX-01.c": Passed, "EX-01.d": Passed}, 2, "measured", "stopped at level 3",
			[]string{Passed, NotMeasured, Passed, NotMeasured}},
		{"a failure outranks a missing check in one level", measured, Outcomes{"EX-01.a": Passed, "EX-01.b": Passed, "EX-01.d": Failed}, 3, "measured", "level 4 failed",
			[]string{Passed, Passed, Failed, NotMeasured}},
		{"one of two checks missing", measured, Outcomes{"EX-01.a": Passed, "EX-01.b": Passed, "EX-01.c": Passed}, 3, "measured", "stopped at level 4: not measured: [EX-01.d]",
			[]string{Passed, Passed, NotMeasured, NotMeasured}},
		{"unknown outcome counts as missing", measured, Outcomes{"EX-01.a": "maybe"}, 0, "not measured", "level 2 not measured",
			[]string{NotMeasured, NotMeasured, NotMeasured, NotMeasured}},
		{"declared levels counted", withDeclared, Outcomes{"DX-02.a": Passed, "DX-02.b": Passed}, 5, "measured+declared", "",
			[]string{Passed, Passed, Declared, Declared}},
		{"declared levels not reached", withDeclared, Outcomes{"DX-02.a": Passed, "DX-02.b": Failed}, 2, "measured", "level 3 failed",
			[]string{Passed, Failed, Declared, Declared}},
		{"declared levels need level 2", withDeclared, Outcomes{"DX-02.b": Passed}, 0, "not measured", "level 2 not measured",
			[]string{NotMeasured, Passed, Declared, Declared}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Rate(tc.item, tc.obs)
			assert.Equal(t, tc.stars, r.Stars)
			assert.Equal(t, tc.stars > 0, r.Measured())
			assert.Equal(t, tc.basis, r.Basis)
			if tc.reason == "" {
				assert.Empty(t, r.Reason)
			} else {
				assert.Contains(t, r.Reason, tc.reason)
			}
			var stat []string
			for _, lr := range r.Levels {
				stat = append(stat, lr.Status)
			}
			assert.Equal(t, tc.levelStat, stat)
		})
	}
}

func TestRateControls(t *testing.T) {
	it := fixture()[0]
	tests := []struct {
		outcome string
		ok      bool
	}{
		{Failed, true},
		{Passed, false},
		{NotMeasured, false},
		{"", false}, // did not run
	}
	for _, tc := range tests {
		t.Run("outcome="+tc.outcome, func(t *testing.T) {
			obs := Outcomes{}
			if tc.outcome != "" {
				obs["EX-01.control"] = tc.outcome
			}
			r := Rate(it, obs)
			require.Len(t, r.Controls, 1)
			assert.Equal(t, tc.outcome, r.Controls[0].Outcome)
			assert.Equal(t, tc.ok, r.Controls[0].OK)
		})
	}
}

// ratings gives every catalog item the same stars except the overrides.
func ratings(all int, override map[string]int) []Rating {
	var rs []Rating
	for _, it := range Catalog() {
		s, ok := override[it.ID]
		if !ok {
			s = all
		}
		rs = append(rs, Rating{Item: it, Stars: s})
	}
	return rs
}

func TestOverallRating(t *testing.T) {
	longRunning := Profile{Duration: "min-h"}
	short := Profile{Duration: "ms-s"}
	tests := []struct {
		name      string
		ratings   []Rating
		profile   Profile
		stars     int
		capped    bool
		reasons   []string
		warnings  int
		vr01      string
		measured  int
		meanAbout float64
	}{
		{"all five", ratings(5, nil), longRunning, 5, false, nil, 0, "pass", 58, 5},
		{"floor of mean", ratings(4, map[string]int{"EX-02": 5, "EX-04": 5, "EX-05": 5, "EX-06": 5, "EX-07": 5}), longRunning,
			4, false, nil, 0, "pass", 58, 4 + 5.0/58},
		{"fail-close item at 2 caps", ratings(5, map[string]int{"EX-01": 2}), longRunning, 2, true, []string{"EX-01 rates 2"}, 0, "pass", 58, (57*5 + 2) / 58.0},
		{"fail-close item not measured caps", ratings(5, map[string]int{"OP-02": 0}), longRunning, 2, true, []string{"OP-02 not measured"}, 0, "pass", 57, 5},
		{"VR-01 caps when long-running", ratings(5, map[string]int{"VR-01": 1}), longRunning, 2, true, []string{"VR-01 rates 1"}, 0, "fail", 58, (57*5 + 1) / 58.0},
		{"VR-01 is a bonus for ms-s", ratings(5, map[string]int{"VR-01": 1}), short, 4, false, nil, 0, "bonus", 58, (57*5 + 1) / 58.0},
		{"VR-01 unmeasured is a bonus for ms-s", ratings(5, map[string]int{"VR-01": 0}), short, 5, false, nil, 0, "bonus", 57, 5},
		{"DX-03 at 2 warns without cap", ratings(5, map[string]int{"DX-03": 2}), longRunning, 4, false, nil, 1, "pass", 58, (57*5 + 2) / 58.0},
		{"DX-03 at 3 does not warn", ratings(5, map[string]int{"DX-03": 3}), longRunning, 4, false, nil, 0, "pass", 58, (57*5 + 3) / 58.0},
		{"DX-03 unmeasured does not warn", ratings(5, map[string]int{"DX-03": 0}), longRunning, 5, false, nil, 0, "pass", 57, 5},
		{"cap keeps a lower mean", ratings(1, map[string]int{"EX-01": 2}), longRunning, 1, true,
			[]string{"EX-01 rates 2", "EX-03 rates 1", "RT-01 rates 1", "VR-01 rates 1", "OP-02 rates 1"}, 1, "fail", 58, (57 + 2) / 58.0},
		{"nothing measured", ratings(0, nil), longRunning, 0, true,
			[]string{"EX-01 not measured", "EX-03 not measured", "RT-01 not measured", "VR-01 not measured", "OP-02 not measured"}, 0, "not measured", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := OverallRating(tc.ratings, tc.profile)
			assert.Equal(t, tc.stars, o.Stars)
			assert.Equal(t, tc.capped, o.Capped)
			assert.Equal(t, tc.reasons, o.CapReasons)
			assert.Len(t, o.Warnings, tc.warnings)
			assert.Equal(t, tc.measured, o.Measured)
			assert.Equal(t, 58, o.Total)
			assert.InDelta(t, tc.meanAbout, o.Mean, 1e-9)
			require.Len(t, o.FailClose, 5)
			for _, st := range o.FailClose {
				if st.ItemID == "VR-01" {
					assert.Equal(t, tc.vr01, st.Status)
					assert.Equal(t, tc.profile.Duration != "ms-s", st.Applies)
				}
			}
		})
	}
}

func TestLoadDefaultProfile(t *testing.T) {
	p, err := LoadProfile(defaultProfile)
	require.NoError(t, err)
	assert.Equal(t, Profile{
		Name: "default", Duration: "min-h", SideEffects: "restricted-writes", Deployment: "self-hosted-dev",
		Scale: "~100", Determinism: "includes-llm", Language: "go",
	}, p)
	assert.True(t, p.FailCloseApplies(FailCloseLongRunning))
	for _, f := range ProfileFields {
		_, ok := f.Allowed[f.Value(p)]
		assert.True(t, ok, f.Key)
	}
}

func TestLoadProfileMissingFile(t *testing.T) {
	_, err := LoadProfile("no-such-profile.yaml")
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseProfileRejects(t *testing.T) {
	good, err := os.ReadFile(defaultProfile)
	require.NoError(t, err)
	replace := func(old, new string) string {
		t.Helper()
		require.Contains(t, string(good), old)
		return strings.Replace(string(good), old, new, 1)
	}
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"bad duration", replace("duration: min-h", "duration: weeks"), "duration"},
		{"missing side effects", replace("side_effects: restricted-writes", ""), "side_effects"},
		{"bad deployment", replace("deployment: self-hosted-dev", "deployment: mainframe"), "deployment"},
		{"bad scale", replace(`scale: "~100"`, "scale: 100"), "scale"},
		{"bad determinism", replace("determinism: includes-llm", "determinism: sometimes"), "determinism"},
		{"other language", replace("language: go", "language: python"), "language"},
		{"unknown key", string(good) + "color: blue\n", "color"},
		{"duplicate key", string(good) + "language: go\n", "language"},
		{"wrong type", replace("language: go", "language: [go]"), "language"},
		{"empty", "", "empty"},
		{"null document", "~\n", "duration"},
		{"two documents", string(good) + "---\nname: other\n", "more than one"},
		{"not yaml", "duration: [min-h\n", "profile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProfile([]byte(tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, Profile{}, p)
		})
	}
}

func TestFailCloseApplies(t *testing.T) {
	tests := []struct {
		duration string
		fc       FailClose
		want     bool
	}{
		{"ms-s", FailCloseAlways, true},
		{"ms-s", FailCloseLongRunning, false},
		{"ms-s", FailCloseNever, false},
		{"min-h", FailCloseLongRunning, true},
		{"days-months", FailCloseLongRunning, true},
		{"", FailCloseLongRunning, true}, // unknown duration fails closed
	}
	for _, tc := range tests {
		t.Run(tc.duration+"/"+string(tc.fc), func(t *testing.T) {
			assert.Equal(t, tc.want, Profile{Duration: tc.duration}.FailCloseApplies(tc.fc))
		})
	}
}

func FuzzParseProfile(f *testing.F) {
	good, err := os.ReadFile(defaultProfile)
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte("duration: ms-s\nside_effects: read-only\ndeployment: managed\nscale: 100K+\ndeterminism: deterministic\nlanguage: go\n"))
	f.Add([]byte("{duration: days-months, side_effects: irreversible-financial, deployment: embedded-library, scale: ~10K, determinism: deterministic, language: go}"))
	f.Add([]byte("&a duration: *a\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProfile(b)
		if err != nil {
			if p != (Profile{}) {
				t.Fatalf("error %v returned with a non-zero profile %+v", err, p)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted profile fails Validate: %v\n%q", err, b)
		}
	})
}
