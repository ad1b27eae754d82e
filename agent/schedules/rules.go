package schedules

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones even on a machine without zoneinfo
	"unicode"
	"unicode/utf8"

	schedulepb "go.temporal.io/api/schedule/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/service/worker/scheduler"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/durabench/durabench/agent/tools"
)

// Rules a schedule must satisfy; a RuleError names one.
const (
	RuleCron        = "cron"
	RuleMinInterval = "min_interval"
	RuleTimezone    = "timezone"
	RuleBudget      = "budget"
	RuleMaxTokens   = "max_tokens"
	RuleName        = "name"
	RuleQuery       = "query"
	RuleTimeout     = "timeout"
	RuleOperations  = "operations"
	RuleQuota       = "quota"
	RuleState       = "state"
	// RuleOverlap refuses a manual trigger while a run of the schedule is in
	// flight: the schedule's overlap policy is to skip, not to stack runs.
	RuleOverlap = "overlap"
	// RuleTriggerRate refuses a manual trigger sooner than
	// Config.TriggerInterval after the previous one.
	RuleTriggerRate = "trigger_rate"
)

// RuleError is input refused by a rule, naming the field and the rule.
type RuleError struct {
	Rule    string
	Field   string
	Message string
	// RetryAfter is when the request may succeed, for a refusal that time
	// lifts (trigger_rate); zero otherwise.
	RetryAfter time.Duration
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("%s: %s (rule %s)", e.Field, e.Message, e.Rule)
}

func ruleErr(rule, field, format string, a ...any) *RuleError {
	return &RuleError{Rule: rule, Field: field, Message: fmt.Sprintf(format, a...)}
}

// Limits are the rules' bounds, set by the operator.
type Limits struct {
	MinInterval      time.Duration // between any two fire times
	IntervalHorizon  time.Duration // how far ahead fire times are compared
	MaxBudgetUSD     float64       // system cap per run
	DefaultBudgetUSD float64
	MaxTokens        int64 // system cap per run
	DefaultMaxTokens int64
	MinTimeout       time.Duration
	MaxTimeout       time.Duration
	DefaultTimeout   time.Duration
	MaxNameRunes     int
	MaxQueryBytes    int
	MaxPerUser       int
	MaxPerTenant     int
}

// DefaultLimits are those of the studied implementation where it had them
// (60-minute minimum interval, $10 per run, 50 schedules per user).
func DefaultLimits() Limits {
	return Limits{
		MinInterval:      60 * time.Minute,
		IntervalHorizon:  366 * 24 * time.Hour, // a year: both DST changes of every zone
		MaxBudgetUSD:     10,
		DefaultBudgetUSD: 1,
		MaxTokens:        200_000,
		DefaultMaxTokens: 20_000,
		MinTimeout:       10 * time.Second,
		MaxTimeout:       2 * time.Hour,
		DefaultTimeout:   10 * time.Minute,
		MaxNameRunes:     200,
		MaxQueryBytes:    8000,
		MaxPerUser:       50,
		MaxPerTenant:     500,
	}
}

// Input is what a user gives to create a schedule, or to replace one.
// Optional fields left nil take their defaults.
type Input struct {
	Name               string   `json:"name"`
	Cron               string   `json:"cron"`
	Timezone           string   `json:"timezone,omitempty"`
	Query              string   `json:"query"`
	BudgetUSD          *float64 `json:"budget_usd,omitempty"`
	MaxTokens          *int64   `json:"max_tokens,omitempty"`
	TimeoutSeconds     *int64   `json:"timeout_seconds,omitempty"`
	Deliver            []string `json:"deliver,omitempty"`
	ApprovedOperations []string `json:"approved_operations,omitempty"`
}

// Spec is validated input with defaults applied.
type Spec struct {
	Name               string
	Cron               string
	Timezone           string
	Query              string
	BudgetUSD          float64
	MaxTokens          int64
	Timeout            time.Duration
	Deliver            []string
	ApprovedOperations []string
	NextRun            time.Time // the first fire time after the validation instant
}

// Validate applies every rule to in, with fire times computed from now, and
// returns the first violation as a *RuleError.
func (l Limits) Validate(in Input, now time.Time) (Spec, error) {
	sp := Spec{Name: strings.TrimSpace(in.Name), Query: strings.TrimSpace(in.Query), Cron: strings.TrimSpace(in.Cron)}
	if err := checkText(RuleName, "name", sp.Name, l.MaxNameRunes, utf8.RuneCountInString(sp.Name), "characters", false); err != nil {
		return Spec{}, err
	}
	if err := checkText(RuleQuery, "query", sp.Query, l.MaxQueryBytes, len(sp.Query), "bytes", true); err != nil {
		return Spec{}, err
	}
	var err error
	if sp.Timezone, err = checkTimezone(in.Timezone); err != nil {
		return Spec{}, err
	}
	if sp.NextRun, err = l.checkCron(sp.Cron, sp.Timezone, now); err != nil {
		return Spec{}, err
	}
	if sp.BudgetUSD, err = l.checkBudget(in.BudgetUSD); err != nil {
		return Spec{}, err
	}
	if sp.MaxTokens, err = l.checkMaxTokens(in.MaxTokens); err != nil {
		return Spec{}, err
	}
	if sp.Timeout, err = l.checkTimeout(in.TimeoutSeconds); err != nil {
		return Spec{}, err
	}
	deliver := in.Deliver
	if deliver == nil {
		deliver = []string{tools.OpNotify} // absent: tell the owner; [] asks for nothing
	}
	if sp.Deliver, err = checkOperations("deliver", deliver, tools.Deliverable); err != nil {
		return Spec{}, err
	}
	if sp.ApprovedOperations, err = checkOperations("approved_operations", in.ApprovedOperations, tools.Restricted); err != nil {
		return Spec{}, err
	}
	return sp, nil
}

// checkText requires valid UTF-8 without control characters (newlines and
// tabs allowed where multiline is), not empty and at most max units long.
func checkText(rule, field, s string, max, size int, unit string, multiline bool) error {
	switch {
	case s == "":
		return ruleErr(rule, field, "is required")
	case !utf8.ValidString(s):
		return ruleErr(rule, field, "must be valid UTF-8")
	case size > max:
		return ruleErr(rule, field, "is %d %s long; at most %d allowed", size, unit, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return ruleErr(rule, field, "must not contain control character %U", r)
		}
	}
	return nil
}

// checkTimezone requires an IANA zone name; empty means UTC. "Local" is
// refused: it would mean whatever zone the server happens to run in.
func checkTimezone(tz string) (string, error) {
	if tz == "" {
		return "UTC", nil
	}
	if len(tz) > 64 || tz == "Local" {
		return "", ruleErr(RuleTimezone, "timezone", "%q is not an IANA time zone name (e.g. Asia/Tokyo, UTC)", truncate(tz, 64))
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return "", ruleErr(RuleTimezone, "timezone", "%q is not an IANA time zone name (e.g. Asia/Tokyo, UTC)", tz)
	}
	return tz, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

const maxCronBytes = 120

// cronFieldChars are what the five fields may contain: numbers, ranges,
// lists, steps, * and month or weekday names. Temporal's parser also takes
// seconds and years, @hourly-style macros, "# comments" and a TZ= prefix;
// we refuse those so that the field is plain 5-field cron and the time zone
// comes only from the timezone field.
func cronFieldChar(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("*,-/", r)
}

// newSpecBuilder compiles specs exactly as the Temporal server does, so the
// fire times checked here are the ones Temporal will use (day-of-month and
// day-of-week both apply; a repeated DST hour fires twice; a skipped one
// does not fire).
func newSpecBuilder() *scheduler.SpecBuilder {
	unlimited := func() int { return 0 }
	return scheduler.NewSpecBuilder(unlimited, unlimited)
}

// FireTimes compiles a 5-field cron expression in a zone.
type FireTimes struct{ spec *scheduler.CompiledSpec }

// CompileCron checks the syntax of expr and compiles it in tz.
func CompileCron(expr, tz string) (*FireTimes, error) {
	if expr == "" {
		return nil, ruleErr(RuleCron, "cron", "is required: five fields, minute hour day-of-month month day-of-week, e.g. \"0 9 * * *\"")
	}
	if len(expr) > maxCronBytes {
		return nil, ruleErr(RuleCron, "cron", "is %d bytes long; at most %d allowed", len(expr), maxCronBytes)
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return nil, ruleErr(RuleCron, "cron", "%q has %d fields; want 5: minute hour day-of-month month day-of-week", expr, len(fields))
	}
	for _, f := range fields {
		for _, r := range f {
			if !cronFieldChar(r) {
				return nil, ruleErr(RuleCron, "cron", "%q: character %q is not allowed (use digits, names, * , - /)", expr, r)
			}
		}
	}
	spec, err := newSpecBuilder().NewCompiledSpec(&schedulepb.ScheduleSpec{CronString: []string{expr}, TimezoneName: tz})
	if err != nil {
		return nil, ruleErr(RuleCron, "cron", "%q: %v", expr, err)
	}
	return &FireTimes{spec: spec}, nil
}

// CompileSpec compiles a spec as Temporal describes it (a cron string
// comes back as calendars) with the server's own code, so that it can be
// compared with a row's cron by its fire times.
func CompileSpec(sp *client.ScheduleSpec) (*FireTimes, error) {
	pb := &schedulepb.ScheduleSpec{
		StructuredCalendar:        calendarsPB(sp.Calendars),
		ExcludeStructuredCalendar: calendarsPB(sp.Skip),
		CronString:                sp.CronExpressions,
		Jitter:                    durationpb.New(sp.Jitter),
		TimezoneName:              sp.TimeZoneName,
	}
	for _, iv := range sp.Intervals {
		pb.Interval = append(pb.Interval, &schedulepb.IntervalSpec{Interval: durationpb.New(iv.Every), Phase: durationpb.New(iv.Offset)})
	}
	if !sp.StartAt.IsZero() {
		pb.StartTime = timestamppb.New(sp.StartAt)
	}
	if !sp.EndAt.IsZero() {
		pb.EndTime = timestamppb.New(sp.EndAt)
	}
	spec, err := newSpecBuilder().NewCompiledSpec(pb)
	if err != nil {
		return nil, err
	}
	return &FireTimes{spec: spec}, nil
}

// calendarsPB is the SDK's calendars as the server has them: the ranges as
// they are, an empty list of years meaning every year.
func calendarsPB(cals []client.ScheduleCalendarSpec) []*schedulepb.StructuredCalendarSpec {
	ranges := func(rs []client.ScheduleRange) []*schedulepb.Range {
		out := make([]*schedulepb.Range, 0, len(rs))
		for _, r := range rs {
			out = append(out, &schedulepb.Range{Start: int32(r.Start), End: int32(r.End), Step: int32(r.Step)})
		}
		return out
	}
	out := make([]*schedulepb.StructuredCalendarSpec, 0, len(cals))
	for _, c := range cals {
		out = append(out, &schedulepb.StructuredCalendarSpec{
			Second: ranges(c.Second), Minute: ranges(c.Minute), Hour: ranges(c.Hour), DayOfMonth: ranges(c.DayOfMonth),
			Month: ranges(c.Month), Year: ranges(c.Year), DayOfWeek: ranges(c.DayOfWeek), Comment: c.Comment,
		})
	}
	return out
}

// Next is the first fire time strictly after t, or the zero time if none.
func (f *FireTimes) Next(t time.Time) time.Time {
	res, err := f.spec.GetNextTime("", t)
	if err != nil {
		// Only a compute limit errs, and we set none.
		return time.Time{}
	}
	return res.Nominal
}

// checkCron validates the expression and the minimum interval: every pair
// of consecutive fire times over the horizon, in the schedule's zone, must
// be at least MinInterval apart. Checking only the next two fire times can
// be fooled ("0,1 9 * * *" is a day apart, then a minute), and so can DST
// (a repeated hour fires twice). It returns the first fire time.
func (l Limits) checkCron(expr, tz string, now time.Time) (time.Time, error) {
	ft, err := CompileCron(expr, tz)
	if err != nil {
		return time.Time{}, err
	}
	first := ft.Next(now)
	if first.IsZero() {
		return time.Time{}, ruleErr(RuleCron, "cron", "%q never fires", expr)
	}
	if l.MinInterval <= 0 {
		return first, nil
	}
	loc, _ := time.LoadLocation(tz) // checked by checkTimezone
	end := now.Add(l.IntervalHorizon)
	// At most horizon/MinInterval+1 iterations: a closer pair stops the loop.
	for prev := first; ; {
		next := ft.Next(prev)
		if next.IsZero() || next.After(end) {
			return first, nil
		}
		if gap := next.Sub(prev); gap < l.MinInterval {
			return time.Time{}, ruleErr(RuleMinInterval, "cron",
				"%q fires at %s and again at %s, %s apart; fire times must be at least %s apart",
				expr, prev.In(loc).Format(time.RFC3339), next.In(loc).Format(time.RFC3339), gap, l.MinInterval)
		}
		prev = next
	}
}

func (l Limits) checkBudget(b *float64) (float64, error) {
	if b == nil {
		return l.DefaultBudgetUSD, nil
	}
	v := *b
	switch {
	case math.IsNaN(v):
		return 0, ruleErr(RuleBudget, "budget_usd", "must be a number, not NaN")
	case math.IsInf(v, 0):
		return 0, ruleErr(RuleBudget, "budget_usd", "must be finite")
	case v < 0:
		return 0, ruleErr(RuleBudget, "budget_usd", "%g is negative; must be at least 0", v)
	case v > l.MaxBudgetUSD:
		return 0, ruleErr(RuleBudget, "budget_usd", "%g exceeds the system cap of %g USD per run", v, l.MaxBudgetUSD)
	}
	return v, nil
}

func (l Limits) checkMaxTokens(n *int64) (int64, error) {
	if n == nil {
		return l.DefaultMaxTokens, nil
	}
	if *n < 0 || *n > l.MaxTokens {
		return 0, ruleErr(RuleMaxTokens, "max_tokens", "%d is outside 0..%d", *n, l.MaxTokens)
	}
	return *n, nil
}

func (l Limits) checkTimeout(sec *int64) (time.Duration, error) {
	if sec == nil {
		return l.DefaultTimeout, nil
	}
	lo, hi := int64(l.MinTimeout/time.Second), int64(l.MaxTimeout/time.Second)
	if *sec < lo || *sec > hi {
		return 0, ruleErr(RuleTimeout, "timeout_seconds", "%d is outside %d..%d seconds", *sec, lo, hi)
	}
	return time.Duration(*sec) * time.Second, nil
}

func checkOperations(field string, ops, allowed []string) ([]string, error) {
	if len(ops) > len(allowed) {
		return nil, ruleErr(RuleOperations, field, "has %d entries; at most %d allowed", len(ops), len(allowed))
	}
	seen := map[string]bool{}
	for _, op := range ops {
		if !slices.Contains(allowed, op) {
			return nil, ruleErr(RuleOperations, field, "%q is not one of %s", truncate(op, 40), strings.Join(allowed, ", "))
		}
		if seen[op] {
			return nil, ruleErr(RuleOperations, field, "%q is listed twice", op)
		}
		seen[op] = true
	}
	return slices.Clone(ops), nil
}

// IsRule reports whether err is a RuleError of the given rule.
func IsRule(err error, rule string) bool {
	var re *RuleError
	return errors.As(err, &re) && re.Rule == rule
}
