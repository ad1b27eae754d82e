package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/durabench/durabench/criteria"
)

// Gate returns the problems that must fail CI: an applicable fail-close item
// that was measured and rates 2 or less, and a negative control that did not
// fail. A control that did not run (or was not measured) while other checks
// of its item ran is a problem only when requireControls is set, so that a
// partial run can still gate on what it did measure.
func Gate(r *Report, requireControls bool) []string {
	var problems []string
	for _, it := range r.Items() {
		rt := it.Rating
		if fc := it.FailClose; fc != nil && fc.Applies && rt.Measured() && rt.Stars <= 2 {
			problems = append(problems, fmt.Sprintf("fail-close item %s (%s) rates %d: %s",
				rt.Item.ID, rt.Item.NameEN, rt.Stars, rt.Reason))
		}
		// Controls are required only of items whose scenarios ran at all, so
		// that items not yet implemented do not fail the gate.
		ran := slices.ContainsFunc(it.Checks, func(c Check) bool { return c.Record != nil })
		for _, c := range it.Checks {
			if !c.Control {
				continue
			}
			switch c.Outcome {
			case criteria.Failed:
			case criteria.Passed:
				problems = append(problems, fmt.Sprintf("negative control %s (%s) passed but must fail: %s",
					c.ID, rt.Item.ID, c.Record.Detail))
			case NotRun:
				if requireControls && ran {
					problems = append(problems, fmt.Sprintf("negative control %s (%s) did not run", c.ID, rt.Item.ID))
				}
			default:
				if requireControls {
					problems = append(problems, fmt.Sprintf("negative control %s (%s) was %s: %s",
						c.ID, rt.Item.ID, strings.ReplaceAll(c.Outcome, "_", " "), c.Record.Detail))
				}
			}
		}
	}
	return problems
}
