// Package evidence defines what a scenario observed, one JSON line per check,
// and reads and writes those lines. It has no Temporal imports so that the
// report side can read evidence without linking the SDK or the server.
package evidence

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Outcome is what a check observed.
type Outcome string

const (
	Passed      Outcome = "passed"
	Failed      Outcome = "failed"
	NotMeasured Outcome = "not_measured"
)

// Valid reports whether o is one of the three known outcomes.
func (o Outcome) Valid() bool {
	return o == Passed || o == Failed || o == NotMeasured
}

// Record is one check's evidence: the JSONL line a scenario writes.
type Record struct {
	Check     string             `json:"check"`             // catalog check id, e.g. "EX-01.worker-sigkill"
	Item      string             `json:"item"`              // catalog item id, e.g. "EX-01"
	Outcome   Outcome            `json:"outcome"`           // what was observed
	Detail    string             `json:"detail"`            // observed facts, human readable
	Reproduce string             `json:"reproduce"`         // command that reruns this check
	Control   bool               `json:"control,omitempty"` // a negative control: it is expected to fail
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	Test      string             `json:"test,omitempty"` // go test name that produced it
	Started   time.Time          `json:"started"`
	Duration  float64            `json:"duration_s"`
	Charts    []Chart            `json:"charts,omitempty"` // data the report draws
	Tables    []Table            `json:"tables,omitempty"` // observed figures the report prints as tables
	// Gate names the metrics a baseline comparison gates on, by base name:
	// each has NAME_p50 with its bootstrap interval NAME_p50_lo and
	// NAME_p50_hi in Metrics. Only figures stable from run to run belong
	// here; the others are shown, not gated.
	Gate map[string]GateRule `json:"gate,omitempty"`
	// HostStealPct is the share of the machine's CPU time, in percent, that
	// a hypervisor gave to other guests while the check ran (Linux
	// /proc/stat), nil where unknown. Timings taken while it is high say
	// more about the host than about the platform.
	HostStealPct *float64 `json:"host_steal_pct,omitempty"`
	// Predicate is the name of the predicate that decided the outcome (see
	// harness/predicate); a negative control names the predicate of the
	// check it guards.
	Predicate string `json:"predicate,omitempty"`
	// Servers are the dedicated servers the check ran on besides its
	// package's shared one, in the order they were recorded.
	Servers []Server `json:"servers,omitempty"`
	// Attempt is 2 for a timing check rerun after a regression was found in
	// its first run (see the Makefile's compare target); 0 or 1 otherwise.
	Attempt int `json:"attempt,omitempty"`
}

// GateRule says how a gated metric is compared with the baseline.
type GateRule struct {
	Better Direction `json:"better"`
	// MinEffect is the smallest relative change of the median that counts
	// as a regression for this metric (0.5 = 50%, 1 = a doubling of a
	// latency): above its run-to-run noise as measured on the reference
	// machine, or 0 for the comparison's default.
	MinEffect float64 `json:"min_effect,omitempty"`
}

// Direction says which way a gated metric gets better.
type Direction string

const (
	LowerIsBetter  Direction = "lower"  // latencies, durations
	HigherIsBetter Direction = "higher" // rates
)

// ChartKind says how a chart's series are drawn.
type ChartKind string

const (
	// Histogram: each series' Y holds raw samples (X unused), drawn as a
	// distribution.
	Histogram ChartKind = "histogram"
	// Line: each series is a curve through its (X, Y) points.
	Line ChartKind = "line"
	// Points: each series is a scatter of (X, Y) points.
	Points ChartKind = "points"
)

// Chart is the data of one figure in the report; the report side renders it.
type Chart struct {
	ID     string    `json:"id"` // unique across the run, e.g. "PF-01-latency"; names the SVG file
	Title  string    `json:"title"`
	Kind   ChartKind `json:"kind"`
	XLabel string    `json:"x_label"`
	YLabel string    `json:"y_label"`
	LogX   bool      `json:"log_x,omitempty"`
	Series []Series  `json:"series"`
}

// Series is one named set of values in a chart.
type Series struct {
	Name string    `json:"name"`
	X    []float64 `json:"x,omitempty"`
	Y    []float64 `json:"y"`
}

// Validate checks what rendering needs.
func (c Chart) Validate() error {
	switch {
	case c.ID == "" || strings.ContainsAny(c.ID, "/\\ ."):
		return fmt.Errorf("chart %q: field id: must be non-empty, without spaces, dots or slashes", c.ID)
	case c.Kind != Histogram && c.Kind != Line && c.Kind != Points:
		return fmt.Errorf("chart %s: field kind: %q is not histogram, line or points", c.ID, c.Kind)
	case len(c.Series) == 0:
		return fmt.Errorf("chart %s: field series: must not be empty", c.ID)
	}
	for _, s := range c.Series {
		if len(s.Y) == 0 {
			return fmt.Errorf("chart %s: series %q: field y: must not be empty", c.ID, s.Name)
		}
		if c.Kind != Histogram && len(s.X) != len(s.Y) {
			return fmt.Errorf("chart %s: series %q: fields x and y: must have the same length (%d, %d)", c.ID, s.Name, len(s.X), len(s.Y))
		}
	}
	return nil
}

// Table is a small table of observed values (one row per backend, say) that
// the report prints under the item; every cell is something this run saw.
type Table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Validate checks what rendering needs.
func (t Table) Validate() error {
	if t.Title == "" || len(t.Columns) == 0 || len(t.Rows) == 0 {
		return fmt.Errorf("table %q: fields title, columns and rows must not be empty", t.Title)
	}
	for i, r := range t.Rows {
		if len(r) != len(t.Columns) {
			return fmt.Errorf("table %q: row %d has %d cells for %d columns", t.Title, i+1, len(r), len(t.Columns))
		}
	}
	return nil
}

// Server describes a dedicated server a check ran on. A reader comparing
// with a server of default configuration must see what differed: a check may
// pass only because of a setting listed here.
type Server struct {
	// Role says what the check did on it; "" when the check was judged on it.
	Role          string            `json:"role,omitempty"`
	Persistence   string            `json:"persistence,omitempty"`
	DynamicConfig map[string]string `json:"dynamic_config,omitempty"`
}

// Environment describes what a scenario package ran against.
type Environment struct {
	Package       string            `json:"package"`
	Mode          string            `json:"mode"` // "embedded" or "external"
	Address       string            `json:"address"`
	Namespace     string            `json:"namespace"`
	ServerVersion string            `json:"server_version,omitempty"`
	SDKVersion    string            `json:"sdk_version,omitempty"`
	Persistence   string            `json:"persistence,omitempty"`
	DynamicConfig map[string]string `json:"dynamic_config,omitempty"`
	GoVersion     string            `json:"go_version"`
	CPUs          int               `json:"cpus"`
	OS            string            `json:"os"`
	Recorded      time.Time         `json:"recorded"`
}

// Writer appends records to one JSONL file; safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	f  *os.File
}

// Create opens (appending) dir/name.jsonl, creating dir.
func Create(dir, name string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("evidence dir %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("evidence file: %w", err)
	}
	return &Writer{f: f}, nil
}

// Write validates r and appends it as one line.
func (w *Writer) Write(r Record) error {
	if err := r.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.f.Write(append(b, '\n'))
	return err
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// Validate checks the fields a report needs.
func (r Record) Validate() error {
	switch {
	case r.Check == "":
		return errors.New("evidence: field check: must not be empty")
	case r.Item == "":
		return fmt.Errorf("evidence %s: field item: must not be empty", r.Check)
	case !r.Outcome.Valid():
		return fmt.Errorf("evidence %s: field outcome: %q is not passed, failed or not_measured", r.Check, r.Outcome)
	case r.Detail == "":
		return fmt.Errorf("evidence %s: field detail: must say what was observed", r.Check)
	case r.Reproduce == "":
		return fmt.Errorf("evidence %s: field reproduce: must give a command", r.Check)
	}
	for _, c := range r.Charts {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("evidence %s: %w", r.Check, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Gate)) {
		g := r.Gate[name]
		if g.Better != LowerIsBetter && g.Better != HigherIsBetter {
			return fmt.Errorf("evidence %s: field gate: %s: better %q is not lower or higher", r.Check, name, g.Better)
		}
		if !(g.MinEffect >= 0 && g.MinEffect < 100) {
			return fmt.Errorf("evidence %s: field gate: %s: min_effect %v is outside [0, 100)", r.Check, name, g.MinEffect)
		}
		for _, suffix := range []string{"_p50", "_p50_lo", "_p50_hi"} {
			if _, ok := r.Metrics[name+suffix]; !ok {
				return fmt.Errorf("evidence %s: field gate: %s: metrics lack %s%s", r.Check, name, name, suffix)
			}
		}
	}
	return nil
}

// WriteEnvironment writes dir/env-<package>.json.
func WriteEnvironment(dir string, env Environment) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "env-"+env.Package+".json"), b, 0o644)
}

// Set is everything read from an evidence directory.
type Set struct {
	Records      []Record // the last record of each check
	Environments []Environment
	// Attempts holds, for a check recorded more than once (a timing check
	// rerun by the compare step, or a test run with -count), every record in
	// the order written; the last is the one in Records.
	Attempts map[string][]Record
}

// ErrNoEvidence is returned by Load when the directory holds no records.
var ErrNoEvidence = errors.New("no evidence found")

// Load reads every *.jsonl and env-*.json file in dir. Records are returned in
// file order; when a check was recorded more than once, the last record is
// in Records and all of them in Attempts, so that a rating can count a
// correctness check's earlier failure.
func Load(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: evidence directory %s does not exist (run the scenarios first: make report)", ErrNoEvidence, dir)
		}
		return nil, err
	}
	set := &Set{Attempts: map[string][]Record{}}
	index := map[string]int{}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, "env-") && strings.HasSuffix(name, ".json"):
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			var env Environment
			if err := json.Unmarshal(b, &env); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			set.Environments = append(set.Environments, env)
		case strings.HasSuffix(name, ".jsonl"):
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			recs, err := Decode(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			for _, r := range recs {
				if i, ok := index[r.Check]; ok {
					if len(set.Attempts[r.Check]) == 0 {
						set.Attempts[r.Check] = []Record{set.Records[i]}
					}
					set.Attempts[r.Check] = append(set.Attempts[r.Check], r)
					set.Records[i] = r
					continue
				}
				index[r.Check] = len(set.Records)
				set.Records = append(set.Records, r)
			}
		}
	}
	if len(set.Records) == 0 {
		return nil, fmt.Errorf("%w in %s (run the scenarios first: make report)", ErrNoEvidence, dir)
	}
	return set, nil
}

// Decode reads JSONL records, naming the line of the first bad one.
func Decode(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var rec Record
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if err := rec.Validate(); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}
