package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/durabench/durabench/criteria"
)

// Gate returns the problems that must fail CI:
//   - an applicable fail-close item that was measured and rates 2 or less;
//   - a negative control that passed, or that decided its outcome with a
//     predicate other than that of the check it guards (or with none);
//   - with requireControls (the embedded server, where every control can
//     run): an applicable fail-close item that is not measured, or whose
//     control did not run or was not measured, unless a waiver names it; a
//     control of another item that did not run while its item's checks did;
//     and a waiver that is no longer needed.
func Gate(r *Report, requireControls bool) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	for _, it := range r.Items() {
		rt := it.Rating
		id := rt.Item.ID
		gated := it.FailClose != nil && it.FailClose.Applies
		isWaived := waived(r.Waivers, id)
		if gated && rt.Measured() && rt.Stars <= 2 {
			add("fail-close item %s (%s) rates %d: %s", id, rt.Item.NameEN, rt.Stars, rt.Reason)
		}
		if gated && requireControls && !rt.Measured() && !isWaived {
			add("fail-close item %s (%s) is not measured (%s): measure it, or waive it with a reason in %s", id, rt.Item.NameEN, rt.Reason, WaiverFile)
		}
		ran := slices.ContainsFunc(it.Checks, func(c Check) bool { return c.Record != nil })
		controlsOK := true
		for _, c := range it.Checks {
			if !c.Control {
				continue
			}
			switch c.Outcome {
			case criteria.Failed:
			case criteria.Passed:
				controlsOK = false
				add("negative control %s (%s) passed but must fail: %s", c.ID, id, c.Record.Detail)
			case NotRun:
				controlsOK = false
				if requireControls && (gated && !isWaived || !gated && ran) {
					add("negative control %s (%s) did not run", c.ID, id)
				}
			default:
				controlsOK = false
				if requireControls && !(gated && isWaived) {
					add("negative control %s (%s) was %s: %s", c.ID, id, strings.ReplaceAll(c.Outcome, "_", " "), c.Record.Detail)
				}
			}
			if p := predicateProblem(it, c); p != "" {
				add("%s", p)
			}
		}
		if requireControls && isWaived && rt.Measured() && controlsOK {
			add("waiver for %s in %s is no longer needed: the item is measured and its negative controls failed as they must; remove it", id, WaiverFile)
		}
	}
	return problems
}

// predicateProblem says what is wrong with the predicate a control ran: a
// control proves its check can fail only if it runs the check's predicate.
func predicateProblem(it Item, ctl Check) string {
	if ctl.Record == nil || (ctl.Outcome != criteria.Passed && ctl.Outcome != criteria.Failed) {
		return ""
	}
	if ctl.Record.Predicate == "" {
		return fmt.Sprintf("negative control %s (%s) decided its outcome without a named predicate; it must run the predicate of %s", ctl.ID, it.Rating.Item.ID, ctl.Guards)
	}
	for _, c := range it.Checks {
		if c.ID == ctl.Guards && c.Record != nil && c.Record.Predicate != ctl.Record.Predicate {
			return fmt.Sprintf("negative control %s (%s) ran predicate %q, but the check it guards, %s, was decided by %q",
				ctl.ID, it.Rating.Item.ID, ctl.Record.Predicate, c.ID, c.Record.Predicate)
		}
	}
	return ""
}
