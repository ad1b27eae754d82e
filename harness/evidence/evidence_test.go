package evidence

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func record(check string, o Outcome) Record {
	return Record{Check: check, Item: check[:5], Outcome: o, Detail: "observed", Reproduce: "go test ./x", Started: time.Unix(0, 0).UTC()}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Record)
		field string
	}{
		{"valid", func(*Record) {}, ""},
		{"no check", func(r *Record) { r.Check = "" }, "field check"},
		{"no item", func(r *Record) { r.Item = "" }, "field item"},
		{"bad outcome", func(r *Record) { r.Outcome = "ok" }, "field outcome"},
		{"no detail", func(r *Record) { r.Detail = "" }, "field detail"},
		{"no reproduce", func(r *Record) { r.Reproduce = "" }, "field reproduce"},
		{"gated metric", func(r *Record) {
			r.Metrics = map[string]float64{"step_ms_p50": 5, "step_ms_p50_lo": 4, "step_ms_p50_hi": 6}
			r.Gate = map[string]GateRule{"step_ms": {Better: LowerIsBetter, MinEffect: 0.5}}
		}, ""},
		{"gated metric without interval", func(r *Record) {
			r.Metrics = map[string]float64{"step_ms_p50": 5}
			r.Gate = map[string]GateRule{"step_ms": {Better: LowerIsBetter}}
		}, "metrics lack step_ms_p50_lo"},
		{"gate direction", func(r *Record) {
			r.Metrics = map[string]float64{"step_ms_p50": 5, "step_ms_p50_lo": 4, "step_ms_p50_hi": 6}
			r.Gate = map[string]GateRule{"step_ms": {Better: "faster"}}
		}, "field gate: step_ms: better"},
		{"gate min effect", func(r *Record) {
			r.Metrics = map[string]float64{"step_ms_p50": 5, "step_ms_p50_lo": 4, "step_ms_p50_hi": 6}
			r.Gate = map[string]GateRule{"step_ms": {Better: LowerIsBetter, MinEffect: -0.1}}
		}, "field gate: step_ms: min_effect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := record("EX-01.a", Passed)
			tt.edit(&r)
			err := r.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.field)
		})
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, "ex")
	require.NoError(t, err)
	require.NoError(t, w.Write(record("EX-01.a", Failed)))
	require.NoError(t, w.Write(record("EX-01.b", Passed)))
	again := record("EX-01.a", Passed) // a rerun: the last record wins
	again.Detail = "rerun"
	require.NoError(t, w.Write(again))
	require.Error(t, w.Write(Record{Check: "EX-01.c"}), "an invalid record is refused")
	require.NoError(t, w.Close())
	require.NoError(t, WriteEnvironment(dir, Environment{Package: "ex", Mode: "embedded", CPUs: 2}))

	set, err := Load(dir)
	require.NoError(t, err)
	require.Len(t, set.Records, 2)
	assert.Equal(t, "EX-01.a", set.Records[0].Check)
	assert.Equal(t, Passed, set.Records[0].Outcome)
	assert.Equal(t, "rerun", set.Records[0].Detail)
	require.Len(t, set.Attempts["EX-01.a"], 2, "both attempts are kept")
	assert.Equal(t, Failed, set.Attempts["EX-01.a"][0].Outcome)
	assert.NotContains(t, set.Attempts, "EX-01.b", "a check recorded once has no attempts list")
	require.Len(t, set.Environments, 1)
	assert.Equal(t, "embedded", set.Environments[0].Mode)
}

func TestLoadNoEvidence(t *testing.T) {
	for name, dir := range map[string]string{
		"missing directory": filepath.Join(t.TempDir(), "nope"),
		"empty directory":   t.TempDir(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(dir)
			require.True(t, errors.Is(err, ErrNoEvidence), "got %v", err)
			assert.Contains(t, err.Error(), dir)
		})
	}
}

func TestDecodeNamesBadLine(t *testing.T) {
	good := `{"check":"EX-01.a","item":"EX-01","outcome":"passed","detail":"d","reproduce":"r","started":"2026-01-01T00:00:00Z","duration_s":1}`
	tests := []struct {
		name, input, want string
	}{
		{"not json", good + "\n{oops\n", "line 2"},
		{"unknown field", `{"check":"EX-01.a","stars":5}`, "unknown field"},
		{"invalid record", `{"check":"EX-01.a","item":"EX-01","outcome":"great","detail":"d","reproduce":"r"}`, "field outcome"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.input))
			require.ErrorContains(t, err, tt.want)
		})
	}
	recs, err := Decode(strings.NewReader("\n" + good + "\n\n"))
	require.NoError(t, err)
	assert.Len(t, recs, 1)
}

func TestLoadReportsFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ex.jsonl"), []byte("{bad\n"), 0o644))
	_, err := Load(dir)
	require.ErrorContains(t, err, "ex.jsonl")
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"check":"EX-01.a","item":"EX-01","outcome":"passed","detail":"d","reproduce":"r"}`)
	f.Add("{}\n{}")
	f.Fuzz(func(t *testing.T, s string) {
		recs, err := Decode(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, r := range recs {
			if err := r.Validate(); err != nil {
				t.Fatalf("Decode returned an invalid record: %v", err)
			}
		}
	})
}
