package reports

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/evidence"
)

func TestWriteJSON(t *testing.T) {
	recs := append(passUpTo("EX-01", 4), control("EX-01.inmem-restart", evidence.Failed, "2 of 5 runs lost"))
	recs = append(recs, control("VR-01.no-getversion", evidence.Passed, "replayed without error"))
	recs[0].Metrics = map[string]float64{"p50_ms": 1.5}
	set := &evidence.Set{Records: recs, Environments: []evidence.Environment{{Package: "ex", CPUs: 8, DynamicConfig: map[string]string{"k": "v"}}}}
	r, err := Build(testCatalog(), testCategories(), profile("min-h"), set, generated)
	require.NoError(t, err)

	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, r))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))

	for _, k := range []string{"generated", "profile", "environment", "overall", "categories", "items"} {
		assert.Contains(t, doc, k)
	}
	assert.Equal(t, "2026-05-01T12:00:00Z", doc["generated"])
	assert.Equal(t, "min-h", doc["profile"].(map[string]any)["duration"])
	env := doc["environment"].([]any)
	require.Len(t, env, 1)
	assert.Equal(t, "v", env[0].(map[string]any)["dynamic_config"].(map[string]any)["k"])

	overall := doc["overall"].(map[string]any)
	for _, k := range []string{"stars", "mean", "measured", "total", "capped", "cap_reasons", "fail_close", "warnings"} {
		assert.Contains(t, overall, k)
	}
	assert.Equal(t, true, overall["capped"], "VR-01 applies and was not measured")
	assert.Equal(t, 2.0, overall["stars"])
	assert.Equal(t, []any{"VR-01 not measured"}, overall["cap_reasons"])
	fc := overall["fail_close"].([]any)
	require.Len(t, fc, 2)
	vrFC := fc[1].(map[string]any)
	assert.Equal(t, "VR-01", vrFC["item"])
	assert.Contains(t, vrFC, "stars")
	assert.Nil(t, vrFC["stars"], "not measured is null")
	assert.Equal(t, "not measured", vrFC["status"])
	assert.Equal(t, true, vrFC["applies"])

	cats := doc["categories"].([]any)
	require.Len(t, cats, 3)
	ex := cats[0].(map[string]any)
	assert.Equal(t, map[string]any{"id": "EX", "name_en": "Execution semantics", "name_ja": "実行セマンティクス", "axis": "正しさ",
		"items": 1.0, "good": 1.0, "not_good": 0.0, "not_measured": 0.0}, ex)

	items := map[string]map[string]any{}
	for _, it := range doc["items"].([]any) {
		m := it.(map[string]any)
		items[m["id"].(string)] = m
	}
	require.Len(t, items, 3)
	for _, tc := range []struct {
		id       string
		stars    any
		basis    string
		failOK   bool // has a fail_close object
		scale    bool
		nChecks  int
		controls int
	}{
		{"EX-01", 4.0, "measured", true, false, 5, 1},
		{"VR-01", nil, "not measured", true, true, 4, 1},
		{"DX-03", nil, "not measured", false, false, 4, 0},
	} {
		t.Run(tc.id, func(t *testing.T) {
			it := items[tc.id]
			for _, k := range []string{"id", "category", "name_en", "name_ja", "stars", "basis", "reason", "fail_close", "levels", "checks"} {
				assert.Contains(t, it, k)
			}
			assert.Equal(t, tc.stars, it["stars"])
			assert.Equal(t, tc.basis, it["basis"])
			assert.Equal(t, tc.failOK, it["fail_close"] != nil)
			assert.Equal(t, tc.scale, it["scale"] != nil)
			levels := it["levels"].([]any)
			require.Len(t, levels, 4)
			for _, l := range levels {
				for _, k := range []string{"stars", "status", "failed", "missing"} {
					assert.Contains(t, l, k)
				}
			}
			checks := it["checks"].([]any)
			require.Len(t, checks, tc.nChecks)
			controls := 0
			for _, c := range checks {
				c := c.(map[string]any)
				for _, k := range []string{"id", "level", "control", "title", "outcome", "detail", "reproduce"} {
					assert.Contains(t, c, k, c["id"])
				}
				if c["control"] == true {
					controls++
					assert.Equal(t, 0.0, c["level"])
					assert.Equal(t, "failed", c["expected"])
					assert.Equal(t, c["outcome"] == "failed", c["ok"])
				} else {
					assert.NotContains(t, c, "expected")
					assert.NotContains(t, c, "ok")
				}
			}
			assert.Equal(t, tc.controls, controls)
		})
	}

	exChecks := items["EX-01"]["checks"].([]any)
	first := exChecks[0].(map[string]any)
	assert.Equal(t, "EX-01.l2", first["id"])
	assert.Equal(t, 2.0, first["level"])
	assert.Equal(t, "passed", first["outcome"])
	assert.Equal(t, "go test ./scenarios/EX -run Testl2", first["reproduce"])
	assert.Equal(t, map[string]any{"p50_ms": 1.5}, first["metrics"])
	assert.NotContains(t, exChecks[1], "metrics", "omitted when empty")
	assert.Equal(t, true, exChecks[4].(map[string]any)["ok"])

	vrChecks := items["VR-01"]["checks"].([]any)
	vrControl := vrChecks[len(vrChecks)-1].(map[string]any)
	assert.Equal(t, "passed", vrControl["outcome"])
	assert.Equal(t, false, vrControl["ok"])
	assert.Equal(t, criteria.NotMeasured, items["VR-01"]["levels"].([]any)[0].(map[string]any)["status"])
	assert.Equal(t, NotRun, vrChecks[0].(map[string]any)["outcome"])

	declared := items["VR-01"]["levels"].([]any)[3].(map[string]any)
	assert.Equal(t, "https://docs.temporal.io/worker-deployments", declared["declared_source"])
}

func TestWriteJSONEmptyListsAreArrays(t *testing.T) {
	r, err := Build(nil, nil, profile("ms-s"), &evidence.Set{}, generated)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, r))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	assert.Equal(t, []any{}, doc["environment"])
	assert.Equal(t, []any{}, doc["items"])
	assert.Equal(t, []any{}, doc["categories"])
	assert.Nil(t, doc["overall"].(map[string]any)["stars"])
}
