// Package ledger is an external side-effect ledger: an append-only JSONL file
// outside Temporal where activities record each execution, so that a test
// can count how often a step really ran across process kills. Each entry is
// written with one write(2) on an O_APPEND file, which keeps lines whole when
// several processes append at once.
package ledger

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Phase of an execution.
const (
	Start = "start" // the activity began its side effect
	Done  = "done"  // the side effect finished; completion not yet reported
)

// Entry is one line of the ledger.
type Entry struct {
	Key     string    `json:"key"` // workflow id
	Step    int       `json:"step"`
	Attempt int32     `json:"attempt"`
	PID     int       `json:"pid"`
	Phase   string    `json:"phase"`
	At      time.Time `json:"at"`
}

// Append writes one entry to the ledger at path.
func Append(path string, e Entry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.PID == 0 {
		e.PID = os.Getpid()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// Read returns every entry in file order; a missing file is an empty ledger.
// A torn last line (a writer killed mid-write) is ignored; any other bad line
// is an error.
func Read(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	var bad error
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if bad != nil {
			return nil, bad
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			bad = fmt.Errorf("ledger %s line %d: %w", path, n, err)
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// StepKey identifies one step of one workflow.
type StepKey struct {
	Key  string
	Step int
}

// Starts counts the executions (start entries) of each step.
func Starts(entries []Entry) map[StepKey]int {
	n := map[StepKey]int{}
	for _, e := range entries {
		if e.Phase == Start {
			n[StepKey{e.Key, e.Step}]++
		}
	}
	return n
}

// CountPhase counts entries of one phase.
func CountPhase(entries []Entry, phase string) int {
	n := 0
	for _, e := range entries {
		if e.Phase == phase {
			n++
		}
	}
	return n
}
