package devserver

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	notSQLite := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notSQLite, []byte("this is not a database"), 0o644))
	readOnly := filepath.Join(dir, "ro.db")
	require.NoError(t, os.WriteFile(readOnly, nil, 0o444))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	type testCase struct {
		name    string
		opts    Options
		field   string // "" = valid
		message string
	}
	tests := []testCase{
		{name: "defaults", opts: Options{}},
		{name: "new file in existing dir", opts: Options{DBFile: filepath.Join(dir, "new.db")}},
		{name: "port too large", opts: Options{Port: 99999}, field: "--port", message: "outside 0..65535"},
		{name: "negative port", opts: Options{Port: -1}, field: "--port", message: "outside 0..65535"},
		{name: "busy port", opts: Options{Port: busyPort}, field: "--port", message: "not available"},
		{name: "metrics port too large", opts: Options{MetricsPort: 70000}, field: "--metrics-port", message: "outside"},
		{name: "same ports", opts: Options{Port: 7999, MetricsPort: 7999}, field: "--metrics-port", message: "must differ"},
		{name: "bad ip", opts: Options{IP: "local"}, field: "--ip", message: "not an IP address"},
		{name: "missing directory", opts: Options{DBFile: filepath.Join(dir, "nope", "x.db")}, field: "--db-file", message: "no such file"},
		{name: "directory as file", opts: Options{DBFile: dir}, field: "--db-file", message: "not a regular file"},
		{name: "not sqlite", opts: Options{DBFile: notSQLite}, field: "--db-file", message: "not a SQLite database"},
		{name: "empty namespace", opts: Options{Namespaces: []string{""}}, field: "--namespace", message: "must not be empty"},
		{name: "bad log level", opts: Options{LogLevel: "loud"}, field: "--log-level", message: "not debug"},
	}
	if os.Geteuid() != 0 { // root can write a read-only file
		tests = append(tests, testCase{name: "read-only file", opts: Options{DBFile: readOnly}, field: "--db-file", message: "for writing"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field)
			assert.Contains(t, err.Error(), tt.message)
		})
	}
}

func TestParseDynamicConfigValue(t *testing.T) {
	tests := []struct {
		in      string
		key     string
		value   any
		wantErr string
	}{
		{in: "limit.blobSize.error=2097152", key: "limit.blobSize.error", value: 2097152},
		{in: "system.enableNexus=true", key: "system.enableNexus", value: true},
		{in: `frontend.name="a=b"`, key: "frontend.name", value: "a=b"},
		{in: "x=[1, 2]", key: "x", value: []any{1, 2}},
		{in: "novalue", wantErr: "must be KEY=VALUE"},
		{in: "=1", wantErr: "must be KEY=VALUE"},
		{in: "k=", wantErr: "must not be empty"},
		{in: "k=[", wantErr: "value of k"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			k, v, err := ParseDynamicConfigValue(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.key, k)
			assert.Equal(t, tt.value, v)
		})
	}
}

func FuzzParseDynamicConfigValue(f *testing.F) {
	for _, s := range []string{"a=1", "b=true", "c=\"x\"", "=", "k=[1,2]", "k={a: 1}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := ParseDynamicConfigValue(s)
		if err == nil && (k == "" || v == nil) {
			t.Fatalf("accepted %q with key %q value %v", s, k, v)
		}
	})
}

func TestStartAndRestartOnFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	db := filepath.Join(t.TempDir(), "t.db")
	for i := range 2 { // the second start finds the schema and namespaces in place
		srv, err := Start(Options{DBFile: db, Namespaces: []string{"default", "other"}})
		require.NoError(t, err, "start %d", i)
		info := srv.Info()
		assert.Equal(t, "sqlite file "+db, info.Persistence)
		_, port, _ := net.SplitHostPort(info.Address)
		p, _ := strconv.Atoi(port)
		assert.NotZero(t, p)
		require.NoError(t, srv.Stop())
	}
}
