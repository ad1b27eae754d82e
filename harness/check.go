package harness

import (
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durabench/durabench/criteria"
	"github.com/durabench/durabench/harness/calibrate"
	"github.com/durabench/durabench/harness/evidence"
	"github.com/durabench/durabench/harness/predicate"
)

// Check records the evidence of one catalog check observed by a test. A
// check that fails is a finding about the platform, not a test failure: the
// test passes and the report shows the failed check. Harness faults call
// t.Fatal instead.
type Check struct {
	env     *Env
	t       testing.TB
	id      string
	control bool
	started time.Time
	cpu     cpuTimes // the machine's CPU time when the check started
	cpuOK   bool
	mu      sync.Mutex
	done    bool
	charts  []evidence.Chart
	tables  []evidence.Table
	gate    map[string]evidence.GateRule
	pred    string            // the predicate that decided the outcome, if one did
	probe   *calibrate.Series // the host probed around the check's series, if it was
	servers []evidence.Server // dedicated servers the check ran on
}

// Check starts recording catalog check id (e.g. "EX-01.worker-sigkill").
func (e *Env) Check(t testing.TB, id string) *Check {
	return e.newCheck(t, id, false)
}

// Control starts recording a negative control: a check run against a
// deliberately broken setup, expected to fail.
func (e *Env) Control(t testing.TB, id string) *Check {
	return e.newCheck(t, id, true)
}

func (e *Env) newCheck(t testing.TB, id string, control bool) *Check {
	t.Helper()
	if len(id) < 7 || id[5] != '.' {
		t.Fatalf("harness: check id %q must be ITEM.name, e.g. EX-01.worker-sigkill", id)
	}
	c := &Check{env: e, t: t, id: id, control: control, started: time.Now()}
	c.cpu, c.cpuOK = readCPUTimes()
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.done && !t.Failed() && !t.Skipped() {
			t.Errorf("harness: check %s recorded no outcome", id)
		}
	})
	return c
}

// Chart attaches the data of a figure to the check's evidence; call it
// before the outcome is recorded.
func (c *Check) Chart(ch evidence.Chart) {
	c.t.Helper()
	if err := ch.Validate(); err != nil {
		c.t.Fatalf("harness: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		c.t.Fatalf("harness: chart %s added to check %s after its outcome", ch.ID, c.id)
	}
	c.charts = append(c.charts, ch)
}

// Table attaches a table of observed values to the check's evidence; call
// it before the outcome is recorded.
func (c *Check) Table(tb evidence.Table) {
	c.t.Helper()
	if err := tb.Validate(); err != nil {
		c.t.Fatalf("harness: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		c.t.Fatalf("harness: table %q added to check %s after its outcome", tb.Title, c.id)
	}
	c.tables = append(c.tables, tb)
}

// Gate marks metric name (recorded as name_p50 with its interval) as one
// the baseline comparison gates on; call it before the outcome is recorded.
func (c *Check) Gate(name string, rule evidence.GateRule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate == nil {
		c.gate = map[string]evidence.GateRule{}
	}
	c.gate[name] = rule
}

// HostProbe attaches the host probed right before and right after the
// series the check is judged on (see Env.Calibrate): its metrics join the
// check's and its figures end the detail, so that a baseline comparison can
// tell a slower host from a slower platform. Call it before the outcome is
// recorded.
func (c *Check) HostProbe(s calibrate.Series) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probe = &s
}

// OnServer records that the check is judged on dedicated server s rather
// than on its package's shared server: the report lists s's persistence and
// dynamic config with the check and in its environment section. Call it
// before the outcome is recorded.
func (c *Check) OnServer(s *Server) { c.OnServerAs(s, "") }

// OnServerAs records a dedicated server on which the check measured what
// role says (e.g. a comparison shown beside the verdict), listed like
// OnServer's.
func (c *Check) OnServerAs(s *Server, role string) {
	info := s.Info()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.servers = append(c.servers, evidence.Server{Role: role, Persistence: info.Persistence, DynamicConfig: maps.Clone(info.DynamicConfig)})
}

// Pass records that the check passed, with what was observed.
func (c *Check) Pass(detail string, metrics map[string]float64) {
	c.record(evidence.Passed, detail, metrics)
}

// Fail records that the check failed, with what was observed.
func (c *Check) Fail(detail string, metrics map[string]float64) {
	c.record(evidence.Failed, detail, metrics)
}

// Result records passed when ok, failed otherwise.
func (c *Check) Result(ok bool, detail string, metrics map[string]float64) {
	if ok {
		c.Pass(detail, metrics)
	} else {
		c.Fail(detail, metrics)
	}
}

// Decide records the verdict of predicate p on the observations in, with
// what was observed, and returns it. A check must be the one p decides; a
// negative control must guard it (the catalog's Guards), so that a control
// always runs the very predicate it is there to break.
func Decide[In any](c *Check, p *predicate.P[In], in In, detail string, metrics map[string]float64) bool {
	c.t.Helper()
	want := c.id
	if c.control {
		want = guarded(c.id)
	}
	if p.Check() != want {
		c.t.Fatalf("harness: %s %s is decided by predicate %s of check %s; it must use the predicate of %s", kind(c.control), c.id, p.Name(), p.Check(), want)
	}
	ok := p.Holds(in)
	c.mu.Lock()
	c.pred = p.Name()
	c.mu.Unlock()
	c.Result(ok, detail, metrics)
	return ok
}

// guarded is the check a catalog control guards, "" if id is none.
func guarded(id string) string {
	for _, it := range criteria.Catalog() {
		for _, c := range it.Controls {
			if c.ID == id {
				return c.Guards
			}
		}
	}
	return ""
}

func kind(control bool) string {
	if control {
		return "negative control"
	}
	return "check"
}

// NotMeasured records that this environment cannot observe the check.
func (c *Check) NotMeasured(reason string) {
	c.record(evidence.NotMeasured, reason, nil)
}

func (c *Check) record(o evidence.Outcome, detail string, metrics map[string]float64) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		c.t.Fatalf("harness: check %s recorded twice", c.id)
	}
	c.done = true
	r := evidence.Record{
		Check: c.id, Item: c.id[:5], Outcome: o, Detail: detail, Control: c.control,
		Reproduce: c.env.reproduce(c.t.Name()), Metrics: metrics, Test: c.t.Name(),
		Started: c.started.UTC(), Duration: time.Since(c.started).Seconds(), Charts: c.charts, Tables: c.tables, Gate: c.gate,
		Predicate: c.pred, Attempt: c.env.attempt, Servers: c.servers,
	}
	if now, ok := readCPUTimes(); ok && c.cpuOK {
		if pct, ok := stealPct(c.cpu, now); ok {
			r.HostStealPct = &pct
		}
	}
	if o != evidence.Passed && o != evidence.Failed {
		r.Gate = nil // nothing was measured to gate on
	} else if c.probe != nil {
		r.Detail += "; " + c.probe.String()
		r.Metrics = maps.Clone(metrics) // the caller's map stays as it was
		if r.Metrics == nil {
			r.Metrics = map[string]float64{}
		}
		maps.Copy(r.Metrics, c.probe.Metrics())
	}
	if err := c.env.evidence.Write(r); err != nil {
		c.t.Fatalf("harness: writing evidence: %v", err)
	}
	c.t.Logf("%s %s: %s — %s", kind(c.control), c.id, o, detail)
}

// reproduce is the command that reruns one test of this package.
func (e *Env) reproduce(testName string) string {
	parts := strings.Split(testName, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := fmt.Sprintf("go test %s -run '%s' -count=1 -v", e.PkgPath, strings.Join(parts, "/"))
	if e.External {
		cmd = fmt.Sprintf("%s=%s %s", EnvAddress, e.Options.HostPort, cmd)
	}
	return cmd
}
