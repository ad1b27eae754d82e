package reports

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/evidence"
)

// WriteMarkdown writes r in lang: "en" for REPORT.md, "ja" for REPORT_ja.md.
// Both languages go through the same renderer; only the texts differ.
func WriteMarkdown(w io.Writer, r *Report, lang string) error {
	t, ok := languages[lang]
	if !ok {
		return fmt.Errorf("reports: unknown language %q (want en or ja)", lang)
	}
	m := &markdown{t: t}
	m.intro(r)
	m.waivers(r.Waivers)
	m.environment(r.Environments)
	m.dedicatedServers(r)
	m.starScale()
	m.premise(r.Profile)
	m.overall(r)
	m.summary(r)
	m.glance(r)
	m.failClose(r)
	m.controls(r)
	for _, c := range r.Categories {
		m.category(c)
	}
	_, err := w.Write(m.buf.Bytes())
	return err
}

type markdown struct {
	buf bytes.Buffer
	t   *texts
}

func (m *markdown) printf(format string, a ...any) { fmt.Fprintf(&m.buf, format, a...) }

func (m *markdown) heading(level int, text string) {
	m.printf("%s %s\n\n", strings.Repeat("#", level), text)
}

func (m *markdown) para(text string) { m.printf("%s\n\n", text) }

// field writes one "- **label:** value" line of a list.
func (m *markdown) field(label, value string) { m.printf("- **%s:** %s\n", label, value) }

// table writes a GitHub table; every cell is escaped for `|` and newlines.
func (m *markdown) table(head []string, rows [][]string) {
	m.row(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---"
	}
	m.row(sep)
	for _, r := range rows {
		m.row(r)
	}
	m.printf("\n")
}

func (m *markdown) row(cells []string) {
	esc := make([]string, len(cells))
	for i, c := range cells {
		esc[i] = cell(c)
	}
	m.printf("| %s |\n", strings.Join(esc, " | "))
}

func (m *markdown) intro(r *Report) {
	t := m.t
	m.heading(1, t.title)
	m.para(fmt.Sprintf(t.generated, r.Generated.UTC().Format(time.RFC3339), dash(r.Profile.Name)))
	if r.CodeDigest != "" {
		m.para(fmt.Sprintf(t.codeDigest, r.CodeDigest))
	}
	m.heading(2, t.howToReadHeading)
	m.para(t.howToRead)
}

func (m *markdown) waivers(ws []Waiver) {
	if len(ws) == 0 {
		return
	}
	t := m.t
	m.heading(2, t.waivers)
	m.para(t.waiversIntro)
	rows := make([][]string, len(ws))
	for i, w := range ws {
		rows[i] = []string{w.Item, txt(w.Reason)}
	}
	m.table(t.waiverCols, rows)
}

func (m *markdown) environment(envs []evidence.Environment) {
	t := m.t
	m.heading(2, t.environment)
	groups := dedupEnvironments(envs)
	if len(groups) == 0 {
		m.para(t.environmentNone)
		return
	}
	var rows, dyn [][]string
	for i, g := range groups {
		e, n := g.env, strconv.Itoa(i+1)
		rows = append(rows, []string{n, strings.Join(g.packages, ", "), dash(e.Mode), code(e.Address), dash(e.Namespace),
			dash(e.Persistence), dash(e.ServerVersion), dash(e.SDKVersion), dash(e.GoVersion), dash(e.OS), strconv.Itoa(e.CPUs)})
		for _, k := range slices.Sorted(maps.Keys(e.DynamicConfig)) {
			dyn = append(dyn, []string{n, code(k), code(e.DynamicConfig[k])})
		}
	}
	m.table(t.environmentCols, rows)
	m.heading(3, t.dynamicConfig)
	if len(dyn) == 0 {
		m.para(t.dynamicConfigNone)
		return
	}
	m.table(t.dynamicConfigCols, dyn)
}

// dedicatedServers lists the checks judged on a dedicated server rather than
// on their package's shared one, with what that server set: a check that
// passes only with a setting listed here would fail on a default server.
func (m *markdown) dedicatedServers(r *Report) {
	var rows [][]string
	for _, c := range r.Categories {
		for _, it := range c.Items {
			for _, ch := range it.Checks {
				if ch.Record == nil {
					continue
				}
				for _, s := range ch.Record.Servers {
					rows = append(rows, []string{code(ch.ID), m.serverRole(s), dash(s.Persistence), dash(serverConfig(s))})
				}
			}
		}
	}
	m.heading(3, m.t.dedicated)
	if len(rows) == 0 {
		m.para(m.t.dedicatedNone)
		return
	}
	m.para(m.t.dedicatedIntro)
	m.table(m.t.dedicatedCols, rows)
}

// serverConfig is a dedicated server's dynamic config as key=value pairs,
// sorted by key.
func serverConfig(s evidence.Server) string {
	keys := slices.Sorted(maps.Keys(s.DynamicConfig))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = code(k + "=" + s.DynamicConfig[k])
	}
	return strings.Join(parts, ", ")
}

// serverRole says what a check did on a dedicated server.
func (m *markdown) serverRole(s evidence.Server) string {
	if s.Role == "" {
		return m.t.judgedOn
	}
	return txt(s.Role)
}

type envGroup struct {
	env      evidence.Environment
	packages []string
}

// dedupEnvironments merges environments that differ only in the package that
// recorded them and when, so that one server shared by every package is one row.
func dedupEnvironments(envs []evidence.Environment) []envGroup {
	var groups []envGroup
	index := map[string]int{}
	for _, e := range envs {
		k := e
		k.Package, k.Recorded = "", time.Time{}
		key := fmt.Sprint(k) // fmt prints maps in key order, so the key is stable
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, envGroup{env: e})
		}
		groups[i].packages = append(groups[i].packages, e.Package)
	}
	return groups
}

func (m *markdown) starScale() {
	t := m.t
	m.heading(2, t.starScale)
	var rows [][]string
	for _, s := range criteria.StarScale {
		rows = append(rows, []string{starBar(s.Stars), t.pick(s.LabelEN, s.LabelJA), t.pick(s.Meaning, t.starMeaningsJA[s.Stars-1])})
	}
	m.table(t.starScaleCols, rows)
}

func (m *markdown) premise(p criteria.Profile) {
	t := m.t
	m.heading(2, t.premise)
	var rows [][]string
	for _, f := range criteria.ProfileFields {
		v := f.Value(p)
		label := v
		if l, ok := f.Allowed[v]; ok {
			label = t.pick(l[0], l[1])
		}
		rows = append(rows, []string{t.pick(f.NameEN, f.NameJA), label, code(v)})
	}
	m.table(t.premiseCols, rows)
}

func (m *markdown) overall(r *Report) {
	t, o := m.t, r.Overall
	m.heading(2, t.overall)
	m.field(t.overallStars, m.stars(o.Stars))
	mean := "—"
	if o.Measured > 0 {
		mean = strconv.FormatFloat(o.Mean, 'f', 2, 64)
	}
	m.field(t.overallMean, mean)
	m.field(t.overallMeasured, fmt.Sprintf(t.measuredOf, o.Measured, o.Total))

	// Cap reasons and warnings are rebuilt from the statuses so that they read
	// in the report's language; criteria's own strings stay in report.json.
	var reasons, warnings []string
	for _, fc := range o.FailClose {
		switch {
		case !fc.Applies:
		case fc.Status == "not measured":
			reasons = append(reasons, fmt.Sprintf(t.capNotMeasured, fc.ItemID))
		case fc.Status == "fail":
			reasons = append(reasons, fmt.Sprintf(t.capRates, fc.ItemID, fc.Stars))
		}
	}
	for _, it := range r.Items() {
		rt := it.Rating
		if w := rt.Item.WarnAtOrBelow; w > 0 && rt.Measured() && rt.Stars <= w {
			warnings = append(warnings, fmt.Sprintf(t.warning, rt.Item.ID, rt.Stars, w))
		}
	}
	if len(reasons) > 0 {
		m.field(t.overallCap, fmt.Sprintf(t.capped, strings.Join(reasons, "; ")))
	} else {
		m.field(t.overallCap, t.notCapped)
	}
	if len(warnings) == 0 {
		warnings = []string{t.none}
	}
	m.field(t.overallWarnings, strings.Join(warnings, "; "))
	m.printf("\n")
}

func (m *markdown) summary(r *Report) {
	t := m.t
	m.heading(2, t.summary)
	var rows [][]string
	var items, good, notGood, notMeasured int
	for _, c := range r.Categories {
		rows = append(rows, []string{c.ID + ": " + t.pick(c.NameEN, c.NameJA), strconv.Itoa(len(c.Items)),
			strconv.Itoa(c.Good), strconv.Itoa(c.NotGood), strconv.Itoa(c.NotMeasured)})
		items, good, notGood, notMeasured = items+len(c.Items), good+c.Good, notGood+c.NotGood, notMeasured+c.NotMeasured
	}
	rows = append(rows, []string{"**" + t.total + "**", bold(items), bold(good), bold(notGood), bold(notMeasured)})
	m.table(t.summaryCols, rows)
}

func (m *markdown) glance(r *Report) {
	t := m.t
	m.heading(2, t.glance)
	var rows [][]string
	for _, it := range r.Items() {
		rt := it.Rating
		passed, total := 0, 0
		for _, c := range it.Checks {
			if !c.Control {
				total++
				if c.Outcome == criteria.Passed {
					passed++
				}
			}
		}
		rows = append(rows, []string{rt.Item.ID, txt(t.pick(rt.Item.NameEN, rt.Item.NameJA)), starCount(rt.Stars),
			word(t.bases, rt.Basis), fmt.Sprintf("%d/%d", passed, total)})
	}
	m.table(t.glanceCols, rows)
}

func (m *markdown) failClose(r *Report) {
	t := m.t
	m.heading(2, t.failClose)
	m.para(t.failCloseRule)
	var rows [][]string
	for _, it := range r.Items() {
		if fc := it.FailClose; fc != nil {
			ci := it.Rating.Item
			rows = append(rows, []string{ci.ID + " " + txt(t.pick(ci.NameEN, ci.NameJA)), m.stars(fc.Stars), m.applies(ci, fc), word(t.fcStatus, fc.Status)})
		}
	}
	if len(rows) == 0 {
		m.para(t.noFailClose)
		return
	}
	m.table(t.failCloseCols, rows)
}

func (m *markdown) applies(it criteria.Item, fc *criteria.FailCloseStatus) string {
	a := m.t.applies[0]
	if fc.Applies {
		a = m.t.applies[1]
	}
	return fmt.Sprintf("%s (%s)", a, word(m.t.rules, string(it.FailClose)))
}

func (m *markdown) controls(r *Report) {
	t := m.t
	m.heading(2, t.controls)
	m.para(t.controlsIntro)
	var rows [][]string
	for _, it := range r.Items() {
		ci := it.Rating.Item
		for _, c := range it.Checks {
			if !c.Control {
				continue
			}
			result := t.notOK
			if c.Outcome == criteria.Failed {
				result = t.ok
			}
			rows = append(rows, []string{code(c.ID), ci.ID + " " + txt(t.pick(ci.NameEN, ci.NameJA)),
				word(t.outcomes, criteria.Failed), word(t.outcomes, c.Outcome), result, m.observed(c)})
		}
	}
	if len(rows) == 0 {
		m.para(t.noControls)
		return
	}
	m.table(t.controlsCols, rows)
}

func (m *markdown) category(c Category) {
	t := m.t
	title := c.ID + ": " + t.pick(c.NameEN, c.NameJA)
	if c.Axis != "" {
		title += " (" + c.Axis + ")"
	}
	m.heading(2, title)
	for _, it := range c.Items {
		m.item(it)
	}
}

func (m *markdown) item(it Item) {
	t, rt := m.t, it.Rating
	ci := rt.Item
	m.heading(3, ci.ID+" "+txt(t.pick(ci.NameEN, ci.NameJA)))
	reason := m.reason(it)
	if rt.Measured() {
		m.field(t.itemStars, m.stars(rt.Stars))
	} else {
		m.field(t.itemStars, m.stars(0)+" — "+reason)
	}
	m.field(t.itemBasis, word(t.bases, rt.Basis))
	if fc := it.FailClose; fc != nil {
		m.field(t.itemFailClose, m.applies(ci, fc)+" — "+word(t.fcStatus, fc.Status))
	}
	if ci.WarnAtOrBelow > 0 {
		m.field(t.itemWarnRule, fmt.Sprintf(t.warnRule, ci.WarnAtOrBelow))
	}
	if rt.Measured() && reason != "" {
		m.field(t.itemReason, reason)
	}
	m.field(t.itemEvaluates, txt(t.pick(ci.EvaluatesEN, ci.EvaluatesJA)))
	if ci.PatternEN != "" {
		m.field(t.itemPattern, txt(t.pick(ci.PatternEN, ci.PatternJA)))
	}
	m.printf("\n")

	if ci.Scale != nil {
		m.para("**" + t.itemScale + "**")
		var rows [][]string
		for i, s := range ci.Scale {
			rows = append(rows, []string{starBar(i + 1), txt(s)})
		}
		m.table(t.scaleCols, rows)
	}

	m.para("**" + t.itemLadder + "**")
	var ladder [][]string
	for i, lr := range rt.Levels {
		lv := ci.Levels[i]
		ladder = append(ladder, []string{strconv.Itoa(lr.Stars), txt(t.pick(lv.SummaryEN, lv.SummaryJA)), m.levelStatus(lr, lv)})
	}
	m.table(t.ladderCols, ladder)

	m.para("**" + t.itemChecks + "**")
	var checks [][]string
	for _, c := range it.Checks {
		level, outcome := strconv.Itoa(c.Level), word(t.outcomes, c.Outcome)
		if c.Control {
			level, outcome = t.controlLevel, outcome+" ("+t.expected+")"
		}
		repro := "—"
		if c.Record != nil {
			repro = code(c.Record.Reproduce)
		}
		checks = append(checks, []string{code(c.ID), level, m.kind(c), txt(t.pick(c.TitleEN, c.TitleJA)), outcome, m.observed(c), repro})
	}
	m.table(t.checkCols, checks)
	m.tables(it)
	m.charts(it)
}

// tables prints the tables of observed values the item's checks recorded,
// each under the id of its check.
func (m *markdown) tables(it Item) {
	for _, c := range it.Checks {
		if c.Record == nil {
			continue
		}
		for _, tb := range c.Record.Tables {
			m.para(code(c.ID) + " — " + txt(tb.Title))
			rows := make([][]string, len(tb.Rows))
			for i, r := range tb.Rows {
				rows[i] = make([]string, len(r))
				for j, v := range r {
					rows[i][j] = txt(v)
				}
			}
			m.table(tb.Columns, rows)
		}
	}
}

// charts embeds the SVGs of the item's charts (written by the report command
// to ChartDir), each under the id of the check that recorded it.
func (m *markdown) charts(it Item) {
	heading := false
	for _, c := range it.Checks {
		if c.Record == nil {
			continue
		}
		for _, ch := range c.Record.Charts {
			if !heading {
				m.para("**" + m.t.itemCharts + "**")
				heading = true
			}
			m.para(code(c.ID))
			m.para(fmt.Sprintf("![%s](%s)", altText(ch), chartLink(ch.ID)))
		}
	}
}

// altText is a chart's title as markdown image text: brackets would end it
// and a newline would break the line.
func altText(ch evidence.Chart) string {
	s := ch.Title
	if s == "" {
		s = ch.ID
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "[", `\[`, "]", `\]`, "<", "&lt;").Replace(s)
}

// reason says, in the report's language, which level stopped the rating;
// it follows criteria.Rate: the first level that neither passed nor was declared.
func (m *markdown) reason(it Item) string {
	for _, lr := range it.Rating.Levels {
		switch lr.Status {
		case criteria.Failed:
			return fmt.Sprintf(m.t.reasonFailed, lr.Stars, strings.Join(lr.Failed, ", "))
		case criteria.NotMeasured:
			parts := make([]string, len(lr.Missing))
			for i, id := range lr.Missing {
				parts[i] = m.missing(it, id)
			}
			return fmt.Sprintf(m.t.reasonMissing, lr.Stars, strings.Join(parts, "; "))
		}
	}
	return ""
}

// missing says why a check has no pass or fail: it did not run, or it ran and
// recorded why it could not measure (e.g. the server cannot be killed).
func (m *markdown) missing(it Item, id string) string {
	for _, c := range it.Checks {
		if c.ID == id && c.Record != nil {
			return fmt.Sprintf("%s (%s: %s)", id, word(m.t.outcomes, c.Outcome), txt(c.Record.Detail))
		}
	}
	return fmt.Sprintf("%s (%s)", id, word(m.t.outcomes, NotRun))
}

func (m *markdown) levelStatus(lr criteria.LevelResult, lv criteria.Level) string {
	st := word(m.t.outcomes, lr.Status)
	switch {
	case lv.Unreached != "":
		return fmt.Sprintf(m.t.unreached, txt(lv.Unreached))
	case lv.Declared != nil:
		return fmt.Sprintf(m.t.declared, txt(lv.Declared.Claim), lv.Declared.Source) + "\n" + fmt.Sprintf(m.t.declaredGA, txt(lv.Declared.GA))
	case len(lr.Failed) > 0:
		return st + ": " + strings.Join(lr.Failed, ", ")
	case len(lr.Missing) > 0:
		return st + ": " + strings.Join(lr.Missing, ", ")
	}
	return st
}

// kind is a check's kind: correctness or timing, and whether its mechanism
// is a pattern of ours. A control takes the kind of the check it guards.
func (m *markdown) kind(c Check) string {
	k := m.t.kinds[0]
	if c.Timing {
		k = m.t.kinds[1]
	}
	if c.Pattern {
		k += ", " + m.t.kinds[2]
	}
	return k
}

// observed is a check's recorded detail, followed by its metrics, the
// predicate that decided it and, for a check recorded more than once, every
// attempt.
func (m *markdown) observed(c Check) string {
	if c.Record == nil {
		return m.t.noEvidence
	}
	var s string
	if len(c.Attempts) > 1 {
		parts := make([]string, len(c.Attempts))
		for i, a := range c.Attempts {
			parts[i] = fmt.Sprintf(m.t.attempt, i+1) + " (" + word(m.t.outcomes, string(a.Outcome)) + "): " + m.recorded(a)
		}
		s = strings.Join(parts, "\n")
	} else {
		s = m.recorded(*c.Record)
	}
	if c.Record.Predicate != "" {
		s += "\n" + m.t.predicate + ": " + code(c.Record.Predicate)
	}
	return s
}

// recorded is one record's detail, metrics and host steal.
func (m *markdown) recorded(r evidence.Record) string {
	s := txt(r.Detail)
	if len(r.Metrics) > 0 {
		keys := slices.Sorted(maps.Keys(r.Metrics))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + strconv.FormatFloat(r.Metrics[k], 'g', 4, 64) // 4 significant digits: the JSON keeps full precision
		}
		s += "\n" + m.t.metrics + ": " + strings.Join(parts, ", ")
	}
	for _, sv := range r.Servers {
		s += "\n" + fmt.Sprintf(m.t.onDedicated, m.serverRole(sv), dash(sv.Persistence), dash(serverConfig(sv)))
	}
	// Below 1% steal is the usual background of a shared host.
	if p := r.HostStealPct; p != nil && *p >= 1 {
		s += "\n" + fmt.Sprintf(m.t.hostSteal, *p)
	}
	return s
}

// stars renders a rating with its label, or "— not measured".
func (m *markdown) stars(n int) string {
	if n == 0 {
		return "— " + m.t.notMeasured
	}
	s := criteria.StarScale[n-1]
	return fmt.Sprintf("%s %d (%s)", starBar(n), n, m.t.pick(s.LabelEN, s.LabelJA))
}

// starBar renders n of 5 stars; 0 (not measured) renders as "—".
func starBar(n int) string {
	if n == 0 {
		return "—"
	}
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}

func starCount(n int) string {
	if n == 0 {
		return "—"
	}
	return starBar(n) + " " + strconv.Itoa(n)
}

// cell escapes what would break a table row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", "<br>")
}

// txt keeps recorded text literal: an observed "<nil>" must not vanish as an HTML tag.
func txt(s string) string { return strings.ReplaceAll(s, "<", "&lt;") }

// code renders s as an inline code span, fenced so that backticks inside survive.
func code(s string) string {
	if s == "" {
		return "—"
	}
	s = strings.NewReplacer("\r\n", " ", "\n", " ").Replace(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func bold(n int) string { return "**" + strconv.Itoa(n) + "**" }
