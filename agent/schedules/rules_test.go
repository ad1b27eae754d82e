package schedules

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

// at is a wall-clock time in a zone.
func at(t *testing.T, zone string, y int, mo time.Month, d, h, mi, s int) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	require.NoError(t, err)
	return time.Date(y, mo, d, h, mi, s, 0, loc)
}

func TestValidate(t *testing.T) {
	base := Input{Name: "Daily digest", Cron: "0 9 * * *", Timezone: "Asia/Tokyo", Query: "AI industry news"}
	with := func(f func(*Input)) Input { in := base; f(&in); return in }
	jan := at(t, "UTC", 2026, time.January, 10, 12, 0, 0)
	hour, day := time.Hour, 24*time.Hour

	tests := []struct {
		name   string
		in     Input
		now    time.Time
		min    time.Duration // MinInterval; 0 = the default 60 minutes
		rule   string        // "" = valid
		field  string
		msg    string
		verify func(t *testing.T, sp Spec)
	}{
		{name: "daily in Tokyo", in: base, now: jan, verify: func(t *testing.T, sp Spec) {
			assert.Equal(t, at(t, "Asia/Tokyo", 2026, time.January, 11, 9, 0, 0).UTC(), sp.NextRun.UTC())
			assert.Equal(t, 1.0, sp.BudgetUSD, "default budget")
			assert.Equal(t, int64(20000), sp.MaxTokens, "default tokens")
			assert.Equal(t, 10*time.Minute, sp.Timeout, "default timeout")
			assert.Equal(t, []string{"notify"}, sp.Deliver, "default delivery")
		}},
		{name: "no delivery asked", in: with(func(i *Input) { i.Deliver = []string{} }), now: jan, verify: func(t *testing.T, sp Spec) {
			assert.Empty(t, sp.Deliver)
		}},
		{name: "timezone defaults to UTC", in: with(func(i *Input) { i.Timezone = "" }), now: jan, verify: func(t *testing.T, sp Spec) {
			assert.Equal(t, "UTC", sp.Timezone)
			assert.Equal(t, at(t, "UTC", 2026, time.January, 11, 9, 0, 0), sp.NextRun.UTC())
		}},
		{name: "weekdays and names", in: with(func(i *Input) { i.Cron = "30 8 * jan-dec mon-fri" }), now: jan},
		{name: "every two hours", in: with(func(i *Input) { i.Cron = "0 */2 * * *" }), now: jan},
		{name: "zero budget", in: with(func(i *Input) { i.BudgetUSD = ptr(0.0) }), now: jan},
		{name: "budget at the cap", in: with(func(i *Input) { i.BudgetUSD = ptr(10.0) }), now: jan},

		// Minimum interval, over every pair of fire times.
		{name: "0,1 9 a minute apart once a day", in: with(func(i *Input) { i.Cron = "0,1 9 * * *" }), now: jan,
			rule: RuleMinInterval, field: "cron", msg: "1m0s apart"},
		{name: "0,1 9 seen from between the two", in: with(func(i *Input) { i.Cron = "0,1 9 * * *" }),
			now: at(t, "Asia/Tokyo", 2026, time.January, 10, 9, 0, 30), rule: RuleMinInterval, msg: "at least 1h0m0s apart"},
		{name: "every 30 minutes", in: with(func(i *Input) { i.Cron = "*/30 * * * *" }), now: jan, rule: RuleMinInterval},
		{name: "9 and 18 against a 10-hour minimum", in: with(func(i *Input) { i.Cron = "0 9,18 * * *" }), now: jan, min: 10 * hour, rule: RuleMinInterval},
		{name: "DST: repeated 01:30 fires twice an hour apart", now: jan, min: 90 * time.Minute,
			in: with(func(i *Input) { i.Cron = "30 1 * * *"; i.Timezone = "America/New_York" }), rule: RuleMinInterval, msg: "2026-11-01T01:30:00-05:00"},
		{name: "DST: same in Tokyo has no DST", now: jan, min: 90 * time.Minute,
			in: with(func(i *Input) { i.Cron = "30 1 * * *" })},
		{name: "DST: spring forward brings 01:30 and 03:30 an hour apart", now: jan, min: 90 * time.Minute,
			in: with(func(i *Input) { i.Cron = "30 1,3 * * *"; i.Timezone = "America/New_York" }), rule: RuleMinInterval, msg: "1h0m0s apart"},
		{name: "DST: the same in UTC is two hours apart", now: jan, min: 90 * time.Minute,
			in: with(func(i *Input) { i.Cron = "30 1,3 * * *"; i.Timezone = "UTC" })},
		{name: "day of month and weekday both apply (Friday the 13th)", now: jan, min: 7 * day,
			in: with(func(i *Input) { i.Cron = "0 9 13 * 5" })},

		// Cron syntax.
		{name: "empty cron", in: with(func(i *Input) { i.Cron = " " }), now: jan, rule: RuleCron, field: "cron", msg: "is required"},
		{name: "six fields", in: with(func(i *Input) { i.Cron = "0 0 9 * * *" }), now: jan, rule: RuleCron, msg: "has 6 fields"},
		{name: "four fields", in: with(func(i *Input) { i.Cron = "0 9 * *" }), now: jan, rule: RuleCron, msg: "has 4 fields"},
		{name: "macro", in: with(func(i *Input) { i.Cron = "@daily" }), now: jan, rule: RuleCron, msg: "has 1 fields"},
		{name: "TZ prefix", in: with(func(i *Input) { i.Cron = "TZ=UTC 0 9 * *" }), now: jan, rule: RuleCron, msg: "not allowed"},
		{name: "comment", in: with(func(i *Input) { i.Cron = "0 9 * * #x" }), now: jan, rule: RuleCron, msg: "not allowed"},
		{name: "question mark", in: with(func(i *Input) { i.Cron = "0 9 ? * *" }), now: jan, rule: RuleCron, msg: "not allowed"},
		{name: "minute out of range", in: with(func(i *Input) { i.Cron = "60 9 * * *" }), now: jan, rule: RuleCron, msg: "range"},
		{name: "hour out of range", in: with(func(i *Input) { i.Cron = "0 24 * * *" }), now: jan, rule: RuleCron},
		{name: "bad step", in: with(func(i *Input) { i.Cron = "0 */0 * * *" }), now: jan, rule: RuleCron},
		{name: "never fires", in: with(func(i *Input) { i.Cron = "0 9 31 2 *" }), now: jan, rule: RuleCron, msg: "never fires"},
		{name: "too long", in: with(func(i *Input) { i.Cron = "0 9 * * " + strings.Repeat("1,", 100) + "1" }), now: jan, rule: RuleCron, msg: "bytes long"},

		// Time zone.
		{name: "unknown timezone", in: with(func(i *Input) { i.Timezone = "Mars/Olympus_Mons" }), now: jan, rule: RuleTimezone, field: "timezone", msg: "IANA"},
		{name: "Local is refused", in: with(func(i *Input) { i.Timezone = "Local" }), now: jan, rule: RuleTimezone},
		{name: "path as timezone", in: with(func(i *Input) { i.Timezone = "../../etc/passwd" }), now: jan, rule: RuleTimezone},

		// Budget.
		{name: "NaN budget", in: with(func(i *Input) { i.BudgetUSD = ptr(math.NaN()) }), now: jan, rule: RuleBudget, field: "budget_usd", msg: "NaN"},
		{name: "infinite budget", in: with(func(i *Input) { i.BudgetUSD = ptr(math.Inf(1)) }), now: jan, rule: RuleBudget, msg: "finite"},
		{name: "minus infinite budget", in: with(func(i *Input) { i.BudgetUSD = ptr(math.Inf(-1)) }), now: jan, rule: RuleBudget, msg: "finite"},
		{name: "negative budget", in: with(func(i *Input) { i.BudgetUSD = ptr(-0.01) }), now: jan, rule: RuleBudget, msg: "negative"},
		{name: "budget above the cap", in: with(func(i *Input) { i.BudgetUSD = ptr(10.01) }), now: jan, rule: RuleBudget, msg: "system cap"},
		{name: "negative tokens", in: with(func(i *Input) { i.MaxTokens = ptr(int64(-1)) }), now: jan, rule: RuleMaxTokens, field: "max_tokens"},
		{name: "tokens above the cap", in: with(func(i *Input) { i.MaxTokens = ptr(int64(200_001)) }), now: jan, rule: RuleMaxTokens},

		// Timeout.
		{name: "timeout too short", in: with(func(i *Input) { i.TimeoutSeconds = ptr(int64(5)) }), now: jan, rule: RuleTimeout, field: "timeout_seconds", msg: "10..7200"},
		{name: "timeout too long", in: with(func(i *Input) { i.TimeoutSeconds = ptr(int64(7201)) }), now: jan, rule: RuleTimeout},
		{name: "negative timeout", in: with(func(i *Input) { i.TimeoutSeconds = ptr(int64(-600)) }), now: jan, rule: RuleTimeout},

		// Name and query.
		{name: "missing name", in: with(func(i *Input) { i.Name = "  " }), now: jan, rule: RuleName, field: "name", msg: "required"},
		{name: "long name", in: with(func(i *Input) { i.Name = strings.Repeat("名", 201) }), now: jan, rule: RuleName, msg: "201 characters"},
		{name: "name at the bound", in: with(func(i *Input) { i.Name = strings.Repeat("名", 200) }), now: jan},
		{name: "control character in name", in: with(func(i *Input) { i.Name = "a\x00b" }), now: jan, rule: RuleName, msg: "control"},
		{name: "invalid UTF-8", in: with(func(i *Input) { i.Name = "a\xffb" }), now: jan, rule: RuleName, msg: "UTF-8"},
		{name: "missing query", in: with(func(i *Input) { i.Query = "" }), now: jan, rule: RuleQuery, field: "query"},
		{name: "long query", in: with(func(i *Input) { i.Query = strings.Repeat("x", 8001) }), now: jan, rule: RuleQuery, msg: "8001 bytes"},
		{name: "multiline query", in: with(func(i *Input) { i.Query = "line one\nline two" }), now: jan},

		// Operations.
		{name: "unknown delivery", in: with(func(i *Input) { i.Deliver = []string{"fax"} }), now: jan, rule: RuleOperations, field: "deliver"},
		{name: "duplicate delivery", in: with(func(i *Input) { i.Deliver = []string{"notify", "notify"} }), now: jan, rule: RuleOperations, msg: "twice"},
		{name: "approving a harmless op", in: with(func(i *Input) { i.ApprovedOperations = []string{"notify"} }), now: jan, rule: RuleOperations, field: "approved_operations"},
		{name: "approved mail", in: with(func(i *Input) {
			i.Deliver = []string{"notify", "send_email"}
			i.ApprovedOperations = []string{"send_email"}
		}), now: jan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := DefaultLimits()
			if tt.min != 0 {
				l.MinInterval = tt.min
			}
			sp, err := l.Validate(tt.in, tt.now)
			if tt.rule == "" {
				require.NoError(t, err)
				assert.True(t, sp.NextRun.After(tt.now))
				if tt.verify != nil {
					tt.verify(t, sp)
				}
				return
			}
			var re *RuleError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tt.rule, re.Rule, "%v", err)
			if tt.field != "" {
				assert.Equal(t, tt.field, re.Field)
			}
			assert.Contains(t, err.Error(), tt.msg)
			assert.Contains(t, err.Error(), "rule "+tt.rule)
		})
	}
}

// TestFireTimesFollowTemporal pins the semantics we share with the Temporal
// server around the New York autumn change: 01:30 happens twice.
func TestFireTimesFollowTemporal(t *testing.T) {
	ft, err := CompileCron("30 1 * * *", "America/New_York")
	require.NoError(t, err)
	from := at(t, "America/New_York", 2026, time.October, 31, 12, 0, 0)
	var got []string
	for next := ft.Next(from); len(got) < 3; next = ft.Next(next) {
		got = append(got, next.UTC().Format(time.RFC3339))
	}
	assert.Equal(t, []string{"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z"}, got)
}

// FuzzValidate feeds arbitrary input to every rule: no panic, every refusal
// a RuleError naming a rule and a field, and every acceptance within the
// bounds with its fire times really at least the minimum apart.
func FuzzValidate(f *testing.F) {
	f.Add("Daily", "0 9 * * *", "Asia/Tokyo", "news", 1.0, int64(100), int64(600))
	f.Add("x", "0,1 9 * * *", "UTC", "q", math.NaN(), int64(-1), int64(5))
	f.Add("x", "30 1 * * *", "America/New_York", "q", math.Inf(1), int64(0), int64(0))
	f.Add("", "*/5 * * * *", "Mars/Base", "", -1.0, int64(1<<62), int64(1<<40))
	f.Add("名前", "0 0 1 jan sun", "Europe/London", "q\nq", 10.0, int64(200000), int64(7200))
	f.Add("n", "0-59/61 0-23/25 1-31/32 1-12 0-7", "", "q", 0.0, int64(5), int64(10))
	l := DefaultLimits()
	now := time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, name, cron, tz, query string, budget float64, tokens, timeout int64) {
		in := Input{Name: name, Cron: cron, Timezone: tz, Query: query, BudgetUSD: &budget, MaxTokens: &tokens, TimeoutSeconds: &timeout}
		sp, err := l.Validate(in, now)
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || re.Rule == "" || re.Field == "" || re.Message == "" {
				t.Fatalf("error is not a RuleError naming a rule and field: %#v", err)
			}
			return
		}
		if math.IsNaN(sp.BudgetUSD) || sp.BudgetUSD < 0 || sp.BudgetUSD > l.MaxBudgetUSD {
			t.Fatalf("accepted budget %v", sp.BudgetUSD)
		}
		if sp.MaxTokens < 0 || sp.MaxTokens > l.MaxTokens || sp.Timeout < l.MinTimeout || sp.Timeout > l.MaxTimeout {
			t.Fatalf("accepted tokens %d timeout %s", sp.MaxTokens, sp.Timeout)
		}
		if sp.Name == "" || sp.Query == "" || len(strings.Fields(sp.Cron)) != 5 {
			t.Fatalf("accepted %+v", sp)
		}
		ft, err := CompileCron(sp.Cron, sp.Timezone)
		if err != nil {
			t.Fatalf("accepted cron does not compile: %v", err)
		}
		prev := sp.NextRun
		for range 50 {
			next := ft.Next(prev)
			if next.IsZero() || next.After(now.Add(l.IntervalHorizon)) {
				break
			}
			if next.Sub(prev) < l.MinInterval {
				t.Fatalf("accepted %q with fire times %s and %s", sp.Cron, prev, next)
			}
			prev = next
		}
	})
}
