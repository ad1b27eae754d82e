package devserver

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/server/common/dynamicconfig"
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
		{name: "postgres", opts: Options{Persistence: "postgres", DSN: "postgres://u@127.0.0.1:5432/db"}},
		{name: "mysql with postgres visibility", opts: Options{Persistence: "mysql", DSN: "mysql://root@127.0.0.1:3306/db", VisibilityDSN: "postgres://u@127.0.0.1:5432/v"}},
		{name: "unknown persistence", opts: Options{Persistence: "cassandra"}, field: "--persistence", message: "not sqlite, postgres or mysql"},
		{name: "dsn missing", opts: Options{Persistence: "postgres"}, field: "--dsn", message: "required"},
		{name: "dsn with sqlite", opts: Options{DSN: "postgres://u@h:1/db"}, field: "--dsn", message: "--db-file"},
		{name: "db file with postgres", opts: Options{Persistence: "postgres", DSN: "postgres://u@h:1/db", DBFile: "x.db"}, field: "--db-file", message: "takes --dsn"},
		{name: "dsn scheme mismatch", opts: Options{Persistence: "mysql", DSN: "postgres://u@h:1/db"}, field: "--dsn", message: "does not match"},
		{name: "dsn without port", opts: Options{Persistence: "postgres", DSN: "postgres://u@h/db"}, field: "--dsn", message: "HOST:PORT"},
		{name: "dsn without database", opts: Options{Persistence: "postgres", DSN: "postgres://u@h:1"}, field: "--dsn", message: "database name"},
		{name: "dsn with quote", opts: Options{Persistence: "postgres", DSN: "postgres://u@h:1/a%22b"}, field: "--dsn", message: "database name"},
		{name: "dsn not a url", opts: Options{Persistence: "postgres", DSN: "postgres://u@h:1/%zz"}, field: "--dsn", message: "does not parse"},
		{name: "bad visibility dsn", opts: Options{Persistence: "postgres", DSN: "postgres://u@h:1/db", VisibilityDSN: "sqlite://x"}, field: "--visibility-dsn", message: "scheme"},
		{name: "shards zero means one", opts: Options{HistoryShards: 0}},
		{name: "shards too many", opts: Options{HistoryShards: 5000}, field: "--history-shards", message: "outside 1..1024"},
		{name: "archival dir missing", opts: Options{ArchivalDir: filepath.Join(dir, "nope")}, field: "--archival-dir", message: "not an existing directory"},
		{name: "jwks not http", opts: Options{JWKSURL: "file:///keys.json"}, field: "--auth-jwks-url", message: "not an http(s) URL"},
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

func TestParseDSN(t *testing.T) {
	c, err := parseDSN("mysql://root:pw@127.0.0.1:3306/temporal?timeout=5s", "mysql")
	require.NoError(t, err)
	assert.Equal(t, "mysql8", c.PluginName)
	assert.Equal(t, "temporal", c.DatabaseName)
	assert.Equal(t, "127.0.0.1:3306", c.ConnectAddr)
	assert.Equal(t, "root", c.User)
	assert.Equal(t, "pw", c.Password)
	assert.Equal(t, map[string]string{"timeout": "5s"}, c.ConnectAttributes)

	o := Options{Persistence: "mysql", DSN: "mysql://root@h:1/db"}
	main, vis, err := sqlStores(o)
	require.NoError(t, err)
	assert.Equal(t, "db_visibility", vis.DatabaseName, "visibility defaults to the same server")
	assert.Equal(t, "'READ-COMMITTED'", main.ConnectAttributes["tx_isolation"], "MariaDB lacks transaction_isolation")
	o.DSN += "?transaction_isolation=READ-COMMITTED"
	main, _, err = sqlStores(o)
	require.NoError(t, err)
	assert.NotContains(t, main.ConnectAttributes, "tx_isolation", "an isolation the user set is kept")
}

// FuzzParseDSN: any string either parses into a config whose database name
// is safe to quote into CREATE DATABASE, or is refused with a message.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"postgres://u@127.0.0.1:5432/db", "mysql://root:x@h:3306/t?a=b", "postgres://h/db", "", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		c, err := parseDSN(dsn, "")
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotEmpty(t, c.DatabaseName)
		require.NotContains(t, c.DatabaseName, `"`)
		require.NotContains(t, c.DatabaseName, "`")
		require.NotContains(t, c.DatabaseName, ";")
		require.NotEmpty(t, c.ConnectAddr)
	})
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

func TestConstrainedValue(t *testing.T) {
	tests := []struct {
		name, kv    string
		constrained bool
		wantErr     string
	}{
		{name: "scalar kept", kv: "frontend.namespaceRPS=5"},
		{name: "plain list kept", kv: "k=[1, 2]"},
		{name: "namespace-scoped", kv: "frontend.namespaceRPS=[{constraints: {namespace: noisy}, value: 5}]", constrained: true},
		{name: "unknown constraint", kv: "frontend.namespaceRPS=[{constraints: {planet: mars}, value: 5}]", wantErr: "frontend.namespaceRPS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v, err := ParseDynamicConfigValue(tt.kv)
			require.NoError(t, err)
			got, err := constrainedValue(k, v)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			_, isConstrained := got.([]dynamicconfig.ConstrainedValue)
			assert.Equal(t, tt.constrained, isConstrained, "%#v", got)
		})
	}
}
