package ledger

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendReadCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	entries, err := Read(path)
	require.NoError(t, err)
	assert.Empty(t, entries, "a missing ledger is empty")

	var wg sync.WaitGroup
	for step := 1; step <= 20; step++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, Append(path, Entry{Key: "wf", Step: step, Phase: Start}))
			assert.NoError(t, Append(path, Entry{Key: "wf", Step: step, Phase: Done}))
		}()
	}
	wg.Wait()
	require.NoError(t, Append(path, Entry{Key: "wf", Step: 3, Attempt: 2, Phase: Start}))

	entries, err = Read(path)
	require.NoError(t, err)
	assert.Len(t, entries, 41)
	assert.Equal(t, 21, CountPhase(entries, Start))
	assert.Equal(t, 20, CountPhase(entries, Done))
	starts := Starts(entries)
	assert.Equal(t, 2, starts[StepKey{"wf", 3}])
	assert.Equal(t, 1, starts[StepKey{"wf", 4}])
	assert.Equal(t, os.Getpid(), entries[0].PID)
	assert.False(t, entries[0].At.IsZero())
}

func TestReadTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	require.NoError(t, Append(path, Entry{Key: "wf", Step: 1, Phase: Start}))
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"key":"wf","st`)
	require.NoError(t, err)
	f.Close()
	entries, err := Read(path)
	require.NoError(t, err, "a writer killed mid-line leaves a torn last line")
	assert.Len(t, entries, 1)

	require.NoError(t, os.WriteFile(path, []byte("{bad\n{\"key\":\"wf\"}\n"), 0o644))
	_, err = Read(path)
	require.ErrorContains(t, err, "line 1", "a bad line before the end is an error")
}
