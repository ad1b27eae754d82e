package scenarios

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/predicate"
	"github.com/durabench/durabench/scenarios/cp"
	"github.com/durabench/durabench/scenarios/ex"
	"github.com/durabench/durabench/scenarios/op"
	"github.com/durabench/durabench/scenarios/pf"
	"github.com/durabench/durabench/scenarios/rt"
	"github.com/durabench/durabench/scenarios/sg"
	"github.com/durabench/durabench/scenarios/vr"
	"github.com/durabench/durabench/scenarios/wf"
)

// predicates lists, for every scenario package, the named predicates it
// defines; a package that defines none yet maps to nil. A new package must be
// added here (TestEveryPackageListed fails otherwise).
var predicates = map[string]func() []predicate.Spec{
	"ex": ex.Predicates,
	"rt": rt.Predicates,
	"sg": sg.Predicates,
	"wf": wf.Predicates,
	"pf": pf.Predicates,
	"vr": vr.Predicates,
	"cp": cp.Predicates,
	"op": op.Predicates,
}

// fromFirstCheck are the categories in which every check must be decided by
// a named predicate as soon as the category has its first one: all of them
// since EX, RT, WF, SG and PF were brought under the rules. OB, DX and AI
// have no scenarios yet; their first predicate brings every check of theirs
// under the test.
var fromFirstCheck = []string{"EX", "RT", "WF", "SG", "PF", "VR", "CP", "OP", "OB", "DX", "AI"}

func allSpecs(t *testing.T) map[string][]predicate.Spec {
	out := map[string][]predicate.Spec{}
	for pkg, f := range predicates {
		if f != nil {
			out[pkg] = f()
		}
	}
	return out
}

func TestEveryPackageListed(t *testing.T) {
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		tests, err := filepath.Glob(filepath.Join(e.Name(), "*_test.go"))
		require.NoError(t, err)
		if len(tests) > 0 {
			assert.Contains(t, predicates, e.Name(), "scenario package %s is not listed in predicates (rules_test.go)", e.Name())
		}
	}
}

// TestPredicatesCanFail runs every predicate's table: each must have a case
// for which it returns false (a check that cannot fail is a defect) and one
// for which it returns true, and decide every case as its table says.
func TestPredicatesCanFail(t *testing.T) {
	var all []predicate.Spec
	for _, specs := range allSpecs(t) {
		all = append(all, specs...)
	}
	require.NoError(t, predicate.Verify(all))
	for _, s := range all {
		t.Logf("%s: %s, %d cases", s.Check, s.Name, len(s.Run()))
	}
}

// TestPredicatesNameCatalogChecks: a predicate decides a level check of its
// own package's category (a control runs the predicate of the check it
// guards, so controls have none of their own).
func TestPredicatesNameCatalogChecks(t *testing.T) {
	levelChecks := map[string]bool{}
	for _, it := range criteria.Catalog() {
		for _, lv := range it.Levels {
			for _, c := range lv.Checks {
				levelChecks[c.ID] = true
			}
		}
	}
	for pkg, specs := range allSpecs(t) {
		for _, s := range specs {
			assert.True(t, levelChecks[s.Check], "package %s: predicate %s decides %q, which is not a level check of the catalog", pkg, s.Name, s.Check)
			assert.Equal(t, strings.ToUpper(pkg), s.Check[:2], "package %s: predicate %s decides %s, a check of another category", pkg, s.Name, s.Check)
		}
	}
}

// TestChecksUnderRulesHavePredicates walks the catalog: the check each
// negative control guards, and every check of a category in fromFirstCheck
// that has a predicate at all, must be decided by a named predicate.
func TestChecksUnderRulesHavePredicates(t *testing.T) {
	decided := map[string]bool{}
	categories := map[string]bool{}
	for _, specs := range allSpecs(t) {
		for _, s := range specs {
			decided[s.Check] = true
			categories[s.Check[:2]] = true
		}
	}
	var covered []string
	for _, it := range criteria.Catalog() {
		for _, c := range it.Controls {
			assert.True(t, decided[c.Guards] || !categories[it.Category] && slices.Contains(fromFirstCheck, it.Category),
				"control %s guards %s, which has no named predicate", c.ID, c.Guards)
		}
		if !slices.Contains(fromFirstCheck, it.Category) || !categories[it.Category] {
			continue
		}
		covered = append(covered, it.ID)
		for _, lv := range it.Levels {
			for _, c := range lv.Checks {
				assert.True(t, decided[c.ID], "check %s (category %s is under the rules) has no named predicate", c.ID, it.Category)
			}
		}
	}
	t.Logf("whole categories under the rules: %v (of %v, each from its first predicate); items covered: %v", keys(categories, fromFirstCheck), fromFirstCheck, covered)
}

func keys(have map[string]bool, among []string) []string {
	var out []string
	for _, c := range among {
		if have[c] {
			out = append(out, c)
		}
	}
	return out
}
