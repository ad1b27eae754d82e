package reports

import (
	"encoding/json"
	"io"
	"time"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/evidence"
)

// The JSON schema of reports/report.json. Slices are never null so that
// consumers can iterate without checks; stars are null when not measured.
type (
	// JSONReport is the document itself; ReadJSON decodes it for Compare.
	JSONReport struct {
		Generated   time.Time              `json:"generated"`
		CodeDigest  string                 `json:"code_digest"` // see CodeDigest
		Waivers     []jsonWaiver           `json:"waivers"`
		Profile     jsonProfile            `json:"profile"`
		Environment []evidence.Environment `json:"environment"`
		Overall     jsonOverall            `json:"overall"`
		Categories  []jsonCategory         `json:"categories"`
		Items       []jsonItem             `json:"items"`
	}
	jsonWaiver struct {
		Item   string `json:"item"`
		Reason string `json:"reason"`
	}
	jsonProfile struct {
		Name        string `json:"name"`
		Duration    string `json:"duration"`
		SideEffects string `json:"side_effects"`
		Deployment  string `json:"deployment"`
		Scale       string `json:"scale"`
		Determinism string `json:"determinism"`
		Language    string `json:"language"`
	}
	jsonOverall struct {
		Stars      *int            `json:"stars"`
		Mean       float64         `json:"mean"`
		Measured   int             `json:"measured"`
		Total      int             `json:"total"`
		Capped     bool            `json:"capped"`
		CapReasons []string        `json:"cap_reasons"`
		FailClose  []jsonFailClose `json:"fail_close"`
		Warnings   []string        `json:"warnings"`
	}
	jsonFailClose struct {
		Item    string `json:"item"`
		Rule    string `json:"rule"`
		Applies bool   `json:"applies"`
		Stars   *int   `json:"stars"`
		Status  string `json:"status"`
	}
	jsonCategory struct {
		ID          string `json:"id"`
		NameEN      string `json:"name_en"`
		NameJA      string `json:"name_ja"`
		Axis        string `json:"axis,omitempty"`
		Items       int    `json:"items"`
		Good        int    `json:"good"`
		NotGood     int    `json:"not_good"`
		NotMeasured int    `json:"not_measured"`
	}
	jsonItem struct {
		ID          string         `json:"id"`
		Category    string         `json:"category"`
		NameEN      string         `json:"name_en"`
		NameJA      string         `json:"name_ja"`
		EvaluatesEN string         `json:"evaluates_en"`
		EvaluatesJA string         `json:"evaluates_ja"`
		Stars       *int           `json:"stars"`
		Basis       string         `json:"basis"`
		Reason      string         `json:"reason"`
		FailClose   *jsonFailClose `json:"fail_close"`
		Scale       []string       `json:"scale,omitempty"`
		PatternEN   string         `json:"pattern_en,omitempty"` // what a pattern check is worth next to a native capability
		PatternJA   string         `json:"pattern_ja,omitempty"`
		Levels      []jsonLevel    `json:"levels"`
		Checks      []jsonCheck    `json:"checks"`
	}
	jsonLevel struct {
		Stars          int      `json:"stars"`
		SummaryEN      string   `json:"summary_en"`
		SummaryJA      string   `json:"summary_ja"`
		Status         string   `json:"status"`
		Failed         []string `json:"failed"`
		Missing        []string `json:"missing"`
		DeclaredClaim  string   `json:"declared_claim,omitempty"`
		DeclaredSource string   `json:"declared_source,omitempty"`
		DeclaredGA     string   `json:"declared_ga,omitempty"` // where the source states the feature as generally available
		Unreached      string   `json:"unreached,omitempty"`   // why the level can be neither measured here nor declared
	}
	jsonCheck struct {
		ID        string                       `json:"id"`
		Level     int                          `json:"level"`
		Control   bool                         `json:"control"`
		Title     string                       `json:"title"`
		Timing    bool                         `json:"timing,omitempty"`  // outcome depends on the host's speed; only these may be rerun
		Pattern   bool                         `json:"pattern,omitempty"` // mechanism is our code built with the SDK
		Guards    string                       `json:"guards,omitempty"`  // for a control: the check whose predicate it runs
		Predicate string                       `json:"predicate,omitempty"`
		TitleJA   string                       `json:"title_ja"`
		Outcome   string                       `json:"outcome"`
		Expected  string                       `json:"expected,omitempty"`
		OK        *bool                        `json:"ok,omitempty"`
		Detail    string                       `json:"detail"`
		Reproduce string                       `json:"reproduce"`
		Metrics   map[string]float64           `json:"metrics,omitempty"`
		Test      string                       `json:"test,omitempty"`
		Started   *time.Time                   `json:"started,omitempty"`
		Duration  float64                      `json:"duration_s,omitempty"`
		Charts    []jsonChart                  `json:"charts,omitempty"`
		Gate      map[string]evidence.GateRule `json:"gate,omitempty"` // metric base name → how it is compared with a baseline
		// HostStealPct: CPU time the host's hypervisor took while the check ran, in percent.
		HostStealPct *float64 `json:"host_steal_pct,omitempty"`
		// Servers: dedicated servers the check ran on besides its package's.
		Servers []evidence.Server `json:"servers,omitempty"`
		// Attempts lists every record of a check recorded more than once, in
		// order: a timing check is rated on the last, a correctness check on
		// its first failure.
		Attempts []jsonAttempt `json:"attempts,omitempty"`
	}
	jsonAttempt struct {
		Attempt      int                `json:"attempt"`
		Outcome      string             `json:"outcome"`
		Detail       string             `json:"detail"`
		Started      time.Time          `json:"started"`
		Metrics      map[string]float64 `json:"metrics,omitempty"`
		HostStealPct *float64           `json:"host_steal_pct,omitempty"`
	}
	// jsonChart points at a chart's SVG; the data stays in the evidence.
	jsonChart struct {
		ID    string `json:"id"`
		Title string `json:"title"`
		Path  string `json:"path"` // relative to the directory of REPORT.md
	}
)

// WriteJSON writes r as indented JSON (reports/report.json).
func WriteJSON(w io.Writer, r *Report) error {
	out := JSONReport{
		Generated:   r.Generated,
		CodeDigest:  r.CodeDigest,
		Waivers:     []jsonWaiver{},
		Profile:     jsonProfile(r.Profile),
		Environment: nonNil(r.Environments),
		Overall: jsonOverall{
			Stars:      starsOrNull(r.Overall.Stars),
			Mean:       r.Overall.Mean,
			Measured:   r.Overall.Measured,
			Total:      r.Overall.Total,
			Capped:     r.Overall.Capped,
			CapReasons: nonNil(r.Overall.CapReasons),
			FailClose:  []jsonFailClose{},
			Warnings:   nonNil(r.Overall.Warnings),
		},
		Categories: []jsonCategory{},
		Items:      []jsonItem{},
	}
	for _, w := range r.Waivers {
		out.Waivers = append(out.Waivers, jsonWaiver(w))
	}
	rules := map[string]string{}
	for _, it := range r.Items() {
		rules[it.Rating.Item.ID] = string(it.Rating.Item.FailClose)
	}
	for _, fc := range r.Overall.FailClose {
		out.Overall.FailClose = append(out.Overall.FailClose, failCloseJSON(fc, rules[fc.ItemID]))
	}
	for _, c := range r.Categories {
		out.Categories = append(out.Categories, jsonCategory{
			ID: c.ID, NameEN: c.NameEN, NameJA: c.NameJA, Axis: c.Axis,
			Items: len(c.Items), Good: c.Good, NotGood: c.NotGood, NotMeasured: c.NotMeasured,
		})
		for _, it := range c.Items {
			out.Items = append(out.Items, itemJSON(it))
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep "duration>=minutes" and details readable
	return enc.Encode(out)
}

func itemJSON(it Item) jsonItem {
	rt := it.Rating
	ji := jsonItem{
		ID: rt.Item.ID, Category: rt.Item.Category, NameEN: rt.Item.NameEN, NameJA: rt.Item.NameJA,
		EvaluatesEN: rt.Item.EvaluatesEN, EvaluatesJA: rt.Item.EvaluatesJA,
		Stars: starsOrNull(rt.Stars), Basis: rt.Basis, Reason: rt.Reason, Scale: rt.Item.Scale,
		PatternEN: rt.Item.PatternEN, PatternJA: rt.Item.PatternJA,
		Levels: []jsonLevel{}, Checks: []jsonCheck{},
	}
	if it.FailClose != nil {
		fc := failCloseJSON(*it.FailClose, string(rt.Item.FailClose))
		ji.FailClose = &fc
	}
	for i, lr := range rt.Levels {
		lv := rt.Item.Levels[i]
		jl := jsonLevel{
			Stars: lr.Stars, SummaryEN: lv.SummaryEN, SummaryJA: lv.SummaryJA, Status: lr.Status,
			Failed: nonNil(lr.Failed), Missing: nonNil(lr.Missing),
		}
		if lv.Declared != nil {
			jl.DeclaredClaim, jl.DeclaredSource, jl.DeclaredGA = lv.Declared.Claim, lv.Declared.Source, lv.Declared.GA
		}
		jl.Unreached = lv.Unreached
		ji.Levels = append(ji.Levels, jl)
	}
	for _, c := range it.Checks {
		jc := jsonCheck{ID: c.ID, Level: c.Level, Control: c.Control, Title: c.TitleEN, TitleJA: c.TitleJA, Outcome: c.Outcome,
			Timing: c.Timing, Pattern: c.Pattern, Guards: c.Guards}
		if c.Control {
			ok := c.Outcome == criteria.Failed
			jc.Expected, jc.OK = criteria.Failed, &ok
		}
		if rec := c.Record; rec != nil {
			jc.Detail, jc.Reproduce, jc.Metrics, jc.Test, jc.Duration = rec.Detail, rec.Reproduce, rec.Metrics, rec.Test, rec.Duration
			if !rec.Started.IsZero() {
				jc.Started = &rec.Started
			}
			for _, ch := range rec.Charts {
				jc.Charts = append(jc.Charts, jsonChart{ID: ch.ID, Title: ch.Title, Path: ChartPath(ch.ID)})
			}
			jc.Gate, jc.HostStealPct, jc.Predicate, jc.Servers = rec.Gate, rec.HostStealPct, rec.Predicate, rec.Servers
		}
		for i, a := range c.Attempts {
			jc.Attempts = append(jc.Attempts, jsonAttempt{Attempt: i + 1, Outcome: string(a.Outcome), Detail: a.Detail,
				Started: a.Started, Metrics: a.Metrics, HostStealPct: a.HostStealPct})
		}
		ji.Checks = append(ji.Checks, jc)
	}
	return ji
}

func failCloseJSON(fc criteria.FailCloseStatus, rule string) jsonFailClose {
	return jsonFailClose{Item: fc.ItemID, Rule: rule, Applies: fc.Applies, Stars: starsOrNull(fc.Stars), Status: fc.Status}
}

func starsOrNull(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
