package reports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/buildinfo"
)

func TestParseWaivers(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []Waiver
		err  string
	}{
		{"two waivers", "waivers:\n  - item: EX-01\n    reason: not built\n  - item: VR-01\n    reason: later\n",
			[]Waiver{{"EX-01", "not built"}, {"VR-01", "later"}}, ""},
		{"empty file", "", nil, ""},
		{"no waivers", "waivers: []\n", []Waiver{}, ""},
		{"unknown item", "waivers:\n  - item: ZZ-01\n    reason: x\n", nil, `waiver 1: field item: "ZZ-01" is not an item of the catalog`},
		{"not fail-close", "waivers:\n  - item: DX-03\n    reason: x\n", nil, "waiver 1: field item: DX-03 is not fail-close"},
		{"twice", "waivers:\n  - item: EX-01\n    reason: x\n  - item: EX-01\n    reason: y\n", nil, "waiver 2: field item: EX-01 is waived twice"},
		{"no reason", "waivers:\n  - item: EX-01\n", nil, "waiver 1 (EX-01): field reason: must say why"},
		{"blank reason", "waivers:\n  - item: EX-01\n    reason: '  '\n", nil, "field reason"},
		{"unknown field", "waivers:\n  - item: EX-01\n    reason: x\n    until: never\n", nil, "field until not found"},
		{"not yaml", "waivers: [", nil, "waivers:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWaivers([]byte(tt.yaml), testCatalog())
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLoadWaivers(t *testing.T) {
	got, err := LoadWaivers(filepath.Join(t.TempDir(), "none.yaml"), testCatalog())
	require.NoError(t, err, "a missing file waives nothing")
	assert.Empty(t, got)

	bad := filepath.Join(t.TempDir(), "w.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("waivers:\n  - item: DX-03\n    reason: x\n"), 0o644))
	_, err = LoadWaivers(bad, testCatalog())
	require.ErrorContains(t, err, bad)

	// The committed file is valid against the real catalog.
	root, err := buildinfo.ModuleRoot(".")
	require.NoError(t, err)
	_, err = LoadWaivers(filepath.Join(root, WaiverFile), criteria.Catalog())
	require.NoError(t, err)
}

// FuzzParseWaivers: any input is either refused with an error or yields
// waivers that each name a distinct fail-close item with a reason.
func FuzzParseWaivers(f *testing.F) {
	f.Add("waivers:\n  - item: EX-01\n    reason: not built\n")
	f.Add("waivers:\n  - item: VR-01\n")
	f.Add("waivers: {item: EX-01}")
	cat := testCatalog()
	f.Fuzz(func(t *testing.T, in string) {
		ws, err := ParseWaivers([]byte(in), cat)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, w := range ws {
			require.False(t, seen[w.Item])
			seen[w.Item] = true
			require.NotEmpty(t, w.Reason)
			require.Contains(t, []string{"EX-01", "VR-01"}, w.Item)
		}
	})
}
