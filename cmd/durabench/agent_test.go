package main

import (
	"bytes"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAgentServeBadInput: bad flags exit 2 naming the flag, before anything
// starts.
func TestAgentServeBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for _, tt := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no subcommand", []string{"agent"}, "usage: durabench agent serve"},
		{"unknown subcommand", []string{"agent", "start"}, "usage: durabench agent serve"},
		{"model missing", []string{"agent", "serve", "--llm-base-url", "http://127.0.0.1:1/v1"}, "--llm-model: required"},
		{"short API key", []string{"agent", "serve", "--api-key", "abc=t:u"}, "--api-key: API key"},
		{"API key without owner", []string{"agent", "serve", "--api-key", "abcdefghij"}, "KEY=TENANT:USER"},
		{"negative price", []string{"agent", "serve", "--llm-price-input", "-1"}, "must not be negative"},
		{"negative interval", []string{"agent", "serve", "--min-interval", "-1m"}, "--min-interval"},
		{"NaN budget cap", []string{"agent", "serve", "--max-budget-usd", "NaN"}, "--max-budget-usd"},
		{"busy listen address", []string{"agent", "serve", "--listen", busy.Addr().String(), "--data-dir", filepath.Join(dir, "d")}, "--listen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, 2, run(tt.args, &stdout, &stderr), "stderr: %s", stderr.String())
			assert.Contains(t, stderr.String(), tt.stderr)
			assert.Empty(t, stdout.String(), "nothing was served")
		})
	}
}
