// Package criteria holds the 58 evaluation items as data (ids, names in
// English and Japanese, ladders of levels that name their checks, fail-close
// rules, item-specific scales, the premise profile) and the pure rating logic
// that turns check outcomes into stars. It imports nothing from Temporal.
package criteria

import (
	"fmt"
	"regexp"
)

// Category is one of the eleven groups of items.
type Category struct {
	ID     string // "EX"
	NameEN string
	NameJA string
	Axis   string // the seed's one-word axis, e.g. 正しさ
}

// FailClose says when an item caps the overall rating.
type FailClose string

const (
	FailCloseNever  FailClose = ""
	FailCloseAlways FailClose = "always"
	// FailCloseLongRunning applies when the premise duration is minutes or longer.
	FailCloseLongRunning FailClose = "duration>=minutes"
)

// Check is one observable test named by a level. Its id is what evidence
// records carry, e.g. "EX-01.worker-sigkill".
type Check struct {
	ID      string
	TitleEN string
	TitleJA string
	// Timing marks a check whose outcome depends on how fast the host is
	// (latencies, rates, recovery times). Only timing checks may be rerun or
	// set aside for host noise; every other check is a correctness check and
	// counts on its first failure.
	Timing bool
	// Pattern marks a check whose mechanism is our code built with the SDK
	// (a ledger, a breaker, priority queues), not a platform capability. The
	// item's PatternEN and PatternJA say what such a check is worth.
	Pattern bool
	// Guards names, for a negative control, the level check whose predicate
	// the control runs on a deliberately broken setup.
	Guards string
}

// Declaration is a level that nothing on one machine can measure; it is
// granted from a cited source that states the feature as generally
// available, and shown as declared.
type Declaration struct {
	Claim  string
	Source string // a URL or document name
	// GA quotes or paraphrases where the source states the feature as
	// generally available: a preview or experimental feature is never
	// declared.
	GA string
}

// Level is one rung of an item's ladder (stars 2..5; 1 is the floor of any
// measured item).
type Level struct {
	Stars     int
	SummaryEN string
	SummaryJA string
	Checks    []Check
	Declared  *Declaration // non-nil: this level is declared, not measured
	// Unreached, when set, says why this level can be neither measured on
	// one machine nor declared (e.g. the feature is experimental): the
	// rating stops below it and the report shows the reason.
	Unreached string
}

// Item is one of the 58 criteria.
type Item struct {
	ID            string // "EX-01"
	Category      string // "EX"
	NameEN        string
	NameJA        string
	EvaluatesEN   string
	EvaluatesJA   string
	FailClose     FailClose
	WarnAtOrBelow int      // DX-03: a rating at or below this raises a warning; 0 = none
	Scale         []string // item-specific meaning of 1..5 stars (VR-01, AI-02); nil = the common scale
	Levels        []Level  // ordered by Stars ascending, each of 2..5 present
	Controls      []Check  // negative controls: checks that must fail
	// PatternEN and PatternJA say, for an item with Pattern checks, what a
	// pattern built with the SDK is worth next to a native capability, and why.
	PatternEN string
	PatternJA string
}

// Star is the common star scale.
type Star struct {
	Stars   int
	LabelEN string
	LabelJA string
	Meaning string
}

// StarScale is the scale every item uses unless it has its own.
var StarScale = []Star{
	{1, "unsupported", "未対応", "absent or broken; you would build it yourself"},
	{2, "experimental", "実験的", "works with heavy constraints; painful even for a PoC"},
	{3, "PoC-ready", "PoC可", "main cases work; weak on edge cases; monitoring is yours"},
	{4, "production-ready", "本番可", "stable; what a PoC needs to reach production is clear"},
	{5, "production-recommended", "本番推奨", "usable as-is; best practice established"},
}

// Good is the threshold of a "good" rating (3 stars or more).
const Good = 3

var (
	itemIDPattern  = regexp.MustCompile(`^(EX|RT|WF|SG|VR|CP|PF|OP|OB|DX|AI)-0[1-9]$`)
	checkIDPattern = regexp.MustCompile(`^[A-Z]{2}-0[1-9]\.[a-z0-9][a-z0-9-]*$`)
)

// Validate checks the internal consistency of a catalog: ids, names in both
// languages, fail-close rules and their controls, and ladders. A ladder starts
// with a measured level 2, and declared levels sit only at its top, so that no
// measured star ever rests on a declaration. Errors name the item and field.
func Validate(items []Item) error {
	seenItem := map[string]bool{}
	seenCheck := map[string]bool{}
	for _, it := range items {
		if !itemIDPattern.MatchString(it.ID) {
			return fmt.Errorf("item %q: ID must look like EX-01", it.ID)
		}
		if seenItem[it.ID] {
			return fmt.Errorf("item %s: ID is a duplicate", it.ID)
		}
		seenItem[it.ID] = true
		if it.Category != it.ID[:2] {
			return fmt.Errorf("item %s: Category %q does not match the id", it.ID, it.Category)
		}
		for _, f := range []struct{ name, value string }{
			{"NameEN", it.NameEN}, {"NameJA", it.NameJA}, {"EvaluatesEN", it.EvaluatesEN}, {"EvaluatesJA", it.EvaluatesJA},
		} {
			if f.value == "" {
				return fmt.Errorf("item %s: %s is empty", it.ID, f.name)
			}
		}
		switch it.FailClose {
		case FailCloseNever, FailCloseAlways, FailCloseLongRunning:
		default:
			return fmt.Errorf("item %s: FailClose %q is not a known rule", it.ID, it.FailClose)
		}
		if it.WarnAtOrBelow < 0 || it.WarnAtOrBelow > 4 {
			return fmt.Errorf("item %s: WarnAtOrBelow %d is outside 0..4", it.ID, it.WarnAtOrBelow)
		}
		if it.Scale != nil && len(it.Scale) != 5 {
			return fmt.Errorf("item %s: Scale has %d entries, want 5", it.ID, len(it.Scale))
		}
		for i, s := range it.Scale {
			if s == "" {
				return fmt.Errorf("item %s: Scale entry for %d stars is empty", it.ID, i+1)
			}
		}
		if err := validateLevels(it, seenCheck); err != nil {
			return err
		}
		levelChecks := map[string]bool{}
		pattern := false
		for _, lv := range it.Levels {
			for _, c := range lv.Checks {
				levelChecks[c.ID] = true
				pattern = pattern || c.Pattern
				if c.Guards != "" {
					return fmt.Errorf("item %s: check %s: Guards is only for negative controls", it.ID, c.ID)
				}
			}
		}
		if pattern && (it.PatternEN == "" || it.PatternJA == "") {
			return fmt.Errorf("item %s: PatternEN and PatternJA are required: a Pattern check needs the ladder to say what a pattern is worth next to a native capability", it.ID)
		}
		for _, c := range it.Controls {
			if err := checkOK(it.ID, c, seenCheck); err != nil {
				return err
			}
			if !levelChecks[c.Guards] {
				return fmt.Errorf("item %s: control %s: Guards %q must name a level check of the item, whose predicate the control runs", it.ID, c.ID, c.Guards)
			}
			if c.Timing || c.Pattern {
				return fmt.Errorf("item %s: control %s: Timing and Pattern belong to the check it guards", it.ID, c.ID)
			}
		}
		if it.FailClose != FailCloseNever && len(it.Controls) == 0 {
			return fmt.Errorf("item %s: Controls is empty, but a fail-close item needs a negative control", it.ID)
		}
	}
	return nil
}

func validateLevels(it Item, seenCheck map[string]bool) error {
	if len(it.Levels) != 4 {
		return fmt.Errorf("item %s: Levels must hold levels 2..5, got %d levels", it.ID, len(it.Levels))
	}
	declaredBelow := 0 // the lowest level that is declared or unreached
	for i, lv := range it.Levels {
		if lv.Stars != i+2 {
			return fmt.Errorf("item %s: Levels out of order: level %d at position %d (want %d)", it.ID, lv.Stars, i, i+2)
		}
		if lv.SummaryEN == "" || lv.SummaryJA == "" {
			return fmt.Errorf("item %s level %d: SummaryEN and SummaryJA are required", it.ID, lv.Stars)
		}
		switch {
		case lv.Unreached != "":
			switch {
			case lv.Stars == 2:
				return fmt.Errorf("item %s level 2: Unreached, but level 2 must be measured", it.ID)
			case lv.Declared != nil || len(lv.Checks) > 0:
				return fmt.Errorf("item %s level %d: Unreached level may name neither Checks nor a Declaration", it.ID, lv.Stars)
			}
			if declaredBelow == 0 {
				declaredBelow = lv.Stars
			}
		case lv.Declared == nil:
			if len(lv.Checks) == 0 {
				return fmt.Errorf("item %s level %d: Checks is empty, but a measured level must name at least one check", it.ID, lv.Stars)
			}
			if declaredBelow != 0 {
				return fmt.Errorf("item %s level %d: Declared or unreached level %d sits below this measured level", it.ID, lv.Stars, declaredBelow)
			}
		default:
			switch {
			case lv.Stars == 2:
				return fmt.Errorf("item %s level 2: Declared, but level 2 must be measured", it.ID)
			case lv.Declared.Claim == "" || lv.Declared.Source == "":
				return fmt.Errorf("item %s level %d: Declared needs a Claim and a Source", it.ID, lv.Stars)
			case lv.Declared.GA == "":
				return fmt.Errorf("item %s level %d: Declared needs GA, where the source states the feature as generally available", it.ID, lv.Stars)
			case len(lv.Checks) > 0:
				return fmt.Errorf("item %s level %d: Declared level names Checks that would never count", it.ID, lv.Stars)
			}
			if declaredBelow == 0 {
				declaredBelow = lv.Stars
			}
		}
		for _, c := range lv.Checks {
			if err := checkOK(it.ID, c, seenCheck); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkOK(item string, c Check, seen map[string]bool) error {
	if !checkIDPattern.MatchString(c.ID) || c.ID[:5] != item {
		return fmt.Errorf("item %s: check ID %q must be %s.<lower-kebab>", item, c.ID, item)
	}
	if seen[c.ID] {
		return fmt.Errorf("item %s: check ID %s is a duplicate", item, c.ID)
	}
	if c.TitleEN == "" || c.TitleJA == "" {
		return fmt.Errorf("item %s: check %s: TitleEN and TitleJA are required", item, c.ID)
	}
	seen[c.ID] = true
	return nil
}
