package criteria

import (
	"fmt"
	"math"
)

// Outcome values, the same strings evidence records carry.
const (
	Passed      = "passed"
	Failed      = "failed"
	NotMeasured = "not_measured"
	Declared    = "declared"
	// Unreached is a level that can be neither measured here nor declared.
	Unreached = "unreached"
)

// Outcomes maps a check id to its observed outcome (passed, failed,
// not_measured). A check absent from the map did not run.
type Outcomes map[string]string

// LevelResult is how one level of a ladder fared.
type LevelResult struct {
	Stars   int
	Status  string   // passed, failed, not_measured, declared or unreached
	Failed  []string // check ids that failed
	Missing []string // check ids with no evidence or not measured
}

// ControlResult is a negative control: OK when it failed, as it must.
type ControlResult struct {
	Check   Check
	Outcome string // "" when it did not run
	OK      bool
}

// Rating is one item's computed rating.
type Rating struct {
	Item     Item
	Stars    int    // 0 when not measured
	Basis    string // "measured", "measured+declared", "not measured"
	Levels   []LevelResult
	Reason   string // why the next level was not reached, or why not measured
	Controls []ControlResult
}

// Measured reports whether the item received stars.
func (r Rating) Measured() bool { return r.Stars > 0 }

// Rate computes one item's stars: the highest level whose checks, and those
// of every level below, passed (a declared level counts as passed and marks
// the basis). Level 1 is the floor for an item whose level 2 was determined.
// If the first level that did not pass was not measured, the rating stops
// there and the reason says so; if that level is 2, the item is not measured.
func Rate(it Item, obs Outcomes) Rating {
	r := Rating{Item: it, Basis: "not measured"}
	for _, lv := range it.Levels {
		r.Levels = append(r.Levels, levelResult(lv, obs))
	}
	for _, c := range it.Controls {
		out := obs[c.ID]
		r.Controls = append(r.Controls, ControlResult{Check: c, Outcome: out, OK: out == Failed})
	}
	stars, declared := 1, false
	for _, lr := range r.Levels {
		switch lr.Status {
		case Passed:
			stars = lr.Stars
			continue
		case Declared:
			stars, declared = lr.Stars, true
			continue
		case Failed:
			r.Reason = fmt.Sprintf("level %d failed: %v", lr.Stars, lr.Failed)
		case Unreached:
			r.Reason = fmt.Sprintf("level %d unreached: %s", lr.Stars, it.Levels[lr.Stars-2].Unreached)
		case NotMeasured:
			if lr.Stars == 2 {
				r.Reason = fmt.Sprintf("level 2 not measured: %v", lr.Missing)
				return r
			}
			r.Reason = fmt.Sprintf("stopped at level %d: not measured: %v", lr.Stars, lr.Missing)
		}
		break
	}
	r.Stars = stars
	r.Basis = "measured"
	if declared {
		r.Basis = "measured+declared"
	}
	return r
}

func levelResult(lv Level, obs Outcomes) LevelResult {
	lr := LevelResult{Stars: lv.Stars}
	if lv.Unreached != "" {
		lr.Status = Unreached
		return lr
	}
	if lv.Declared != nil {
		lr.Status = Declared
		return lr
	}
	for _, c := range lv.Checks {
		switch obs[c.ID] {
		case Passed:
		case Failed:
			lr.Failed = append(lr.Failed, c.ID)
		default:
			lr.Missing = append(lr.Missing, c.ID)
		}
	}
	switch {
	case len(lr.Failed) > 0:
		lr.Status = Failed
	case len(lr.Missing) > 0:
		lr.Status = NotMeasured
	default:
		lr.Status = Passed
	}
	return lr
}

// FailCloseStatus is one fail-close item's standing.
type FailCloseStatus struct {
	ItemID  string
	Applies bool
	Stars   int    // 0 when not measured
	Status  string // "pass", "fail" (≤2), "not measured", "bonus" (does not apply)
}

// Overall is the whole evaluation.
type Overall struct {
	Stars      int     // floor of the mean of measured items, after the cap; 0 if none measured
	Mean       float64 // mean stars over measured items
	Measured   int
	Total      int
	Capped     bool
	CapReasons []string
	FailClose  []FailCloseStatus
	Warnings   []string
}

// OverallRating combines item ratings. Any applicable fail-close item that
// rates 2 or less caps the overall at 2; so does one that was not measured,
// because an unverified guarantee cannot be assumed (fail closed).
func OverallRating(ratings []Rating, p Profile) Overall {
	o := Overall{Total: len(ratings)}
	sum := 0
	for _, r := range ratings {
		if r.Measured() {
			o.Measured++
			sum += r.Stars
		}
		it := r.Item
		if it.WarnAtOrBelow > 0 && r.Measured() && r.Stars <= it.WarnAtOrBelow {
			o.Warnings = append(o.Warnings, fmt.Sprintf("%s rates %d (warning at %d or below)", it.ID, r.Stars, it.WarnAtOrBelow))
		}
		if it.FailClose == FailCloseNever {
			continue
		}
		st := FailCloseStatus{ItemID: it.ID, Applies: p.FailCloseApplies(it.FailClose), Stars: r.Stars}
		switch {
		case !st.Applies:
			st.Status = "bonus"
		case !r.Measured():
			st.Status = "not measured"
			o.CapReasons = append(o.CapReasons, fmt.Sprintf("%s not measured", it.ID))
		case r.Stars <= 2:
			st.Status = "fail"
			o.CapReasons = append(o.CapReasons, fmt.Sprintf("%s rates %d", it.ID, r.Stars))
		default:
			st.Status = "pass"
		}
		o.FailClose = append(o.FailClose, st)
	}
	// Capped follows the reasons even when nothing was measured, so a report
	// never lists cap reasons beside "not capped".
	o.Capped = len(o.CapReasons) > 0
	if o.Measured == 0 {
		return o
	}
	o.Mean = float64(sum) / float64(o.Measured)
	o.Stars = int(math.Floor(o.Mean))
	if o.Capped && o.Stars > 2 {
		o.Stars = 2
	}
	return o
}
