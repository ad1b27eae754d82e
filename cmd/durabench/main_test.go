package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExitStatus checks that bad input exits 2 with a message naming the
// flag, before any server starts.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"no command", nil, 2, "usage: durabench"},
		{"unknown command", []string{"serve"}, 2, `unknown command "serve"`},
		{"help", []string{"help"}, 0, "devserver"},
		{"port out of range", []string{"devserver", "--port", "99999"}, 2, "--port: 99999 is outside 0..65535"},
		{"unusable db file", []string{"devserver", "--db-file", filepath.Join(dir, "missing", "t.db")}, 2, "--db-file: directory of"},
		{"bad dynamic config", []string{"devserver", "--dynamic-config-value", "novalue"}, 2, "--dynamic-config-value"},
		{"unknown flag", []string{"devserver", "--prot", "1"}, 2, "flag provided but not defined: -prot"},
		{"dsn does not parse", []string{"devserver", "--persistence", "postgres", "--dsn", "postgres://u@127.0.0.1/db"}, 2, "--dsn: host"},
		{"unknown service", []string{"devserver", "--services", "frontend,scheduler"}, 2, `--services: "scheduler" is not one of`},
		{"split on sqlite", []string{"devserver", "--services", "history"}, 2, "--services: a cluster member"},
		{"database unreachable", []string{"devserver", "--port", "0", "--persistence", "postgres", "--dsn", "postgres://u@127.0.0.1:1/db"}, 3, "main store: database server 127.0.0.1:1 unreachable"},
		{"drop on sqlite", []string{"devserver", "--drop-databases"}, 2, "--drop-databases: is for"},
		{"stray argument", []string{"version", "extra"}, 2, `unexpected argument "extra"`},
		{"report without evidence", []string{"report", "-profile", "../../fixtures/profiles/default.yaml", "-evidence", filepath.Join(dir, "none")}, 2, "no evidence found"},
		{"gate without evidence", []string{"gate", "-profile", "../../fixtures/profiles/default.yaml", "-evidence", filepath.Join(dir, "none")}, 2, "no evidence found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tt.status, run(tt.args, &stdout, &stderr), "stderr: %s", stderr.String())
			assert.Contains(t, stderr.String(), tt.stderr)
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run([]string{"version"}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "go.temporal.io/sdk")
	assert.Contains(t, stdout.String(), "go.temporal.io/server")
}

func TestCompareCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	five := write("five.json", `{"items":[{"id":"EX-01","category":"EX","stars":5}]}`)
	three := write("three.json", `{"items":[{"id":"EX-01","category":"EX","stars":3,"reason":"level 4 failed"}]}`)
	// The same drop, where the timing check that failed ran while the host took 20% of the CPU.
	basePassed := write("passed.json", `{"items":[{"id":"RT-01","category":"RT","stars":5,"checks":[{"id":"RT-01.real-time-accuracy","outcome":"passed","timing":true}]}]}`)
	busy := write("busy.json", `{"items":[{"id":"RT-01","category":"RT","stars":3,"checks":[{"id":"RT-01.real-time-accuracy","outcome":"failed","timing":true,"host_steal_pct":20,`+
		`"reproduce":"go test ./scenarios/rt -run '^TestRT01$/^real_time$' -count=1 -v"}]}]}`)
	// A correctness check on the same busy host counts at once, with nothing to rerun.
	busyCorrect := write("busy-correct.json", `{"items":[{"id":"RT-01","category":"RT","stars":3,"checks":[{"id":"RT-01.real-time-accuracy","outcome":"failed","host_steal_pct":20,`+
		`"reproduce":"go test ./scenarios/rt -run x"}]}]}`)
	// The same drop on a host whose probe took 40% longer than in the baseline.
	probe := func(cpu float64) string {
		return fmt.Sprintf(`"metrics":{"probe_cpu_ms_p50_lo":%v,"probe_cpu_ms_p50":%v,"probe_cpu_ms_p50_hi":%v,"probe_fsync_ms_p50_lo":0.2,"probe_fsync_ms_p50":0.3,"probe_fsync_ms_p50_hi":0.4}`, cpu-1, cpu, cpu+1)
	}
	probed := write("probed.json", `{"items":[{"id":"RT-01","category":"RT","stars":5,"checks":[{"id":"RT-01.real-time-accuracy","outcome":"passed","timing":true,`+probe(32)+`}]}]}`)
	slower := write("slower.json", `{"items":[{"id":"RT-01","category":"RT","stars":3,"checks":[{"id":"RT-01.real-time-accuracy","outcome":"failed","timing":true,`+probe(45)+`}]}]}`)
	tests := []struct {
		name   string
		args   []string
		status int
		out    string
	}{
		{"no regression", []string{"compare", five, five}, 0, "compare: no regression"},
		{"stars drop", []string{"compare", five, three}, 1, "regression: stars EX-01: 5 → 3"},
		{"stars drop on a busy host", []string{"compare", basePassed, busy}, 0, "unconfirmed: stars RT-01: 5 → 3"},
		{"steal within -max-steal 25", []string{"compare", "-max-steal", "25", basePassed, busy}, 1,
			"regression: stars RT-01: 5 → 3 ()\nrerun: go test ./scenarios/rt -run '^TestRT01$/^real_time$' -count=1 -v\n"},
		{"busy host, nothing set aside", []string{"compare", "-max-steal", "0", basePassed, busy}, 1, "regression: stars RT-01"},
		{"correctness check on a busy host", []string{"compare", basePassed, busyCorrect}, 1, "regression: stars RT-01: 5 → 3 ()\ndurabench compare: 1 regression"},
		{"bad max-steal", []string{"compare", "-max-steal", "-1", five, five}, 2, "-max-steal"},
		{"stars drop on a slower host", []string{"compare", probed, slower}, 0, "unconfirmed: stars RT-01: 5 → 3 (); host probe slowed: CPU 32 → 45 ms (+40.6%)"},
		{"slower host, nothing set aside", []string{"compare", "-min-probe-slowdown", "0", probed, slower}, 1, "regression: stars RT-01: 5 → 3 ()\n"},
		{"slower host within -min-probe-slowdown 1.5", []string{"compare", "-min-probe-slowdown", "1.5", probed, slower}, 1, "host probe steady: CPU 32 → 45 ms"},
		{"bad min-probe-slowdown", []string{"compare", "-min-probe-slowdown", "0.5", five, five}, 2, "-min-probe-slowdown"},
		{"one file", []string{"compare", five}, 2, "want BASELINE CURRENT"},
		{"missing file", []string{"compare", five, filepath.Join(dir, "none.json")}, 2, "no such file"},
		{"bad min-effect", []string{"compare", "-min-effect", "2", five, five}, 2, "-min-effect"},
		{"not a report", []string{"compare", five, write("bad.json", `{"items":[]}`)}, 2, "field items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tt.status, run(tt.args, &stdout, &stderr))
			assert.Contains(t, stdout.String()+stderr.String(), tt.out)
		})
	}
}
