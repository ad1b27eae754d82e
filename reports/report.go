// Package reports renders evidence into reports: it rates every catalog item
// from the outcomes scenarios recorded, and writes REPORT.md, REPORT_ja.md and
// report.json, and tells CI what must fail it. It never runs workflows: every
// number it prints was observed by a scenario and read from an evidence
// directory.
package reports

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/evidence"
)

// NotRun is the outcome of a check for which no evidence record exists.
const NotRun = "not_run"

// Report is one run's evaluation, ready to render.
type Report struct {
	Generated time.Time
	// CodeDigest identifies the code that produced the evidence (see
	// CodeDigest); a unit test compares the committed report's with the tree.
	CodeDigest string
	// Waivers are the fail-close items the gate lets through unmeasured,
	// printed at the top of the report.
	Waivers      []Waiver
	Profile      criteria.Profile
	Environments []evidence.Environment // sorted by package
	Overall      criteria.Overall
	Categories   []Category // catalog order
}

// Category groups the items of one category with its counts.
type Category struct {
	criteria.Category
	Items       []Item
	Good        int // measured at criteria.Good stars or more
	NotGood     int // measured below criteria.Good
	NotMeasured int
}

// Item is one item's rating with the evidence behind it.
type Item struct {
	Rating    criteria.Rating
	FailClose *criteria.FailCloseStatus // nil unless the item is fail-close
	Checks    []Check                   // ladder checks in level order, then controls
}

// Check is one check of a ladder or one negative control, with its record.
type Check struct {
	criteria.Check
	Level   int  // the level that names it; 0 for a control
	Control bool // a negative control: it must fail
	Outcome string
	Record  *evidence.Record // the last record; nil when the check did not run
	// Attempts holds every record, in order, of a check recorded more than
	// once: a timing check is rated on its last attempt, a correctness check
	// on its first failure.
	Attempts []evidence.Record
}

// Items returns every item in report order.
func (r *Report) Items() []Item {
	var out []Item
	for _, c := range r.Categories {
		out = append(out, c.Items...)
	}
	return out
}

// Build rates every item from the records in set. A record whose check is not
// in the catalog, or that disagrees with the catalog about its item or about
// being a control, is a harness bug and makes Build fail.
func Build(items []criteria.Item, cats []criteria.Category, profile criteria.Profile, set *evidence.Set, generated time.Time) (*Report, error) {
	records, err := indexRecords(items, set.Records)
	if err != nil {
		return nil, err
	}
	timing := map[string]bool{}
	for _, it := range items {
		for _, lv := range it.Levels {
			for _, c := range lv.Checks {
				timing[c.ID] = c.Timing
			}
		}
	}
	obs := criteria.Outcomes{}
	for id, rec := range records {
		obs[id] = decide(timing[id], rec, set.Attempts[id])
	}

	catIndex := map[string]int{}
	rep := &Report{Generated: generated, Profile: profile}
	for _, c := range cats {
		catIndex[c.ID] = len(rep.Categories)
		rep.Categories = append(rep.Categories, Category{Category: c})
	}

	ratings := make([]criteria.Rating, len(items))
	for i, it := range items {
		ratings[i] = criteria.Rate(it, obs)
	}
	rep.Overall = criteria.OverallRating(ratings, profile)
	failClose := map[string]criteria.FailCloseStatus{}
	for _, fc := range rep.Overall.FailClose {
		failClose[fc.ItemID] = fc
	}

	for i, it := range items {
		ci, ok := catIndex[it.Category]
		if !ok {
			return nil, fmt.Errorf("item %s: category %q is not in the category list", it.ID, it.Category)
		}
		ri := Item{Rating: ratings[i], Checks: itemChecks(it, records, set.Attempts, obs)}
		if fc, ok := failClose[it.ID]; ok {
			ri.FailClose = &fc
		}
		cat := &rep.Categories[ci]
		cat.Items = append(cat.Items, ri)
		switch {
		case !ri.Rating.Measured():
			cat.NotMeasured++
		case ri.Rating.Stars >= criteria.Good:
			cat.Good++
		default:
			cat.NotGood++
		}
	}

	rep.Environments = append([]evidence.Environment(nil), set.Environments...)
	sort.SliceStable(rep.Environments, func(i, j int) bool {
		return rep.Environments[i].Package < rep.Environments[j].Package
	})
	return rep, nil
}

// indexRecords maps check id to record, rejecting records the catalog does
// not account for, so that a typo in a scenario cannot silently drop evidence.
func indexRecords(items []criteria.Item, recs []evidence.Record) (map[string]evidence.Record, error) {
	type owner struct {
		item    string
		control bool
	}
	known := map[string]owner{}
	for _, it := range items {
		for _, lv := range it.Levels {
			for _, c := range lv.Checks {
				known[c.ID] = owner{it.ID, false}
			}
		}
		for _, c := range it.Controls {
			known[c.ID] = owner{it.ID, true}
		}
	}
	out := map[string]evidence.Record{}
	var errs []error
	for _, rec := range recs {
		o, ok := known[rec.Check]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("evidence names check %q (item %s), which is not in the catalog", rec.Check, rec.Item))
		case rec.Item != o.item:
			errs = append(errs, fmt.Errorf("evidence for check %q says item %s; the catalog puts it under %s", rec.Check, rec.Item, o.item))
		case rec.Control != o.control:
			errs = append(errs, fmt.Errorf("evidence for check %q has control=%t; the catalog says control=%t", rec.Check, rec.Control, o.control))
		default:
			out[rec.Check] = rec
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("harness bug: %w", errors.Join(errs...))
	}
	return out, nil
}

// decide is the outcome of a check from its records. A timing check is
// rated on its last attempt: an earlier one may have met a busy host. A
// correctness check counts on its first failure, whatever came after.
func decide(timing bool, last evidence.Record, attempts []evidence.Record) string {
	if !timing && slices.ContainsFunc(attempts, func(r evidence.Record) bool { return r.Outcome == evidence.Failed }) {
		return criteria.Failed
	}
	return string(last.Outcome)
}

func itemChecks(it criteria.Item, records map[string]evidence.Record, attempts map[string][]evidence.Record, obs criteria.Outcomes) []Check {
	var out []Check
	add := func(c criteria.Check, level int, control bool) {
		ch := Check{Check: c, Level: level, Control: control, Outcome: NotRun}
		if rec, ok := records[c.ID]; ok {
			ch.Record = &rec
			ch.Outcome = obs[c.ID]
			ch.Attempts = attempts[c.ID]
		}
		out = append(out, ch)
	}
	for _, lv := range it.Levels {
		for _, c := range lv.Checks {
			add(c, lv.Stars, false)
		}
	}
	for _, c := range it.Controls {
		add(c, 0, true)
	}
	return out
}

// Summary is the one-line English verdict the command prints.
func (r *Report) Summary() string {
	o := r.Overall
	if o.Measured == 0 {
		return fmt.Sprintf("overall: not measured (0 of %d items measured)", o.Total)
	}
	s := fmt.Sprintf("overall: %s %d (mean %.2f, %d of %d items measured", starBar(o.Stars), o.Stars, o.Mean, o.Measured, o.Total)
	if o.Capped {
		s += "; capped at 2: " + strings.Join(o.CapReasons, ", ")
	}
	return s + ")"
}
