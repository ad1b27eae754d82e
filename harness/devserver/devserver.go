// Package devserver embeds the Temporal server (go.temporal.io/server) with
// SQLite persistence, in memory or in a file, through the server's public
// temporal.NewServer options. It is what `durabench devserver` runs; scenario
// tests start that command as a child process so that they can SIGKILL it and
// start it again on the same database file.
package devserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/headers"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"gopkg.in/yaml.v3"
)

const clusterName = "active"

// Options configure one embedded server.
type Options struct {
	IP            string         // bind address, loopback by default
	Port          int            // frontend gRPC port; 0 picks a free one
	MetricsPort   int            // Prometheus /metrics port; 0 disables
	DBFile        string         // SQLite file; empty means in memory
	Namespaces    []string       // registered at start (idempotent on an existing file)
	DynamicConfig map[string]any // dynamic config key -> value
	LogLevel      string         // debug, info, warn, error; logs go to stderr
}

// Info describes a started server; `durabench devserver` prints it as JSON.
type Info struct {
	Address       string            `json:"address"`
	MetricsURL    string            `json:"metrics_url,omitempty"`
	Namespaces    []string          `json:"namespaces"`
	Persistence   string            `json:"persistence"`
	ServerVersion string            `json:"server_version"`
	DynamicConfig map[string]string `json:"dynamic_config"`
	PID           int               `json:"pid"`
}

// ConfigError is an invalid option: the caller should exit with status 2.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s: %v", e.Field, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// Server is a running embedded server.
type Server struct {
	srv  temporal.Server
	info Info
}

// Defaults applied before the caller's values: the dev server caches more
// mutable state and allows more visibility calls than a production default,
// as the temporal CLI's dev server does, so that scenarios listing hundreds of
// workflows are not rate limited by a setting meant for shared clusters.
var defaultDynamicConfig = map[string]any{
	"history.hostLevelCacheMaxSize":                  8192,
	"frontend.namespaceRPS.visibility":               1000,
	"system.forceSearchAttributesCacheRefreshOnRead": true,
}

// ParseDynamicConfigValue parses "key=value", the value as a YAML scalar or
// flow value (true, 10, 1.5, "s", [1,2]).
func ParseDynamicConfigValue(kv string) (string, any, error) {
	key, raw, ok := bytes.Cut([]byte(kv), []byte("="))
	if !ok || len(key) == 0 {
		return "", nil, fmt.Errorf("%q must be KEY=VALUE", kv)
	}
	var v any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return "", nil, fmt.Errorf("value of %s: %w", key, err)
	}
	if v == nil {
		return "", nil, fmt.Errorf("value of %s: must not be empty", key)
	}
	return string(key), v, nil
}

// Validate checks the options without starting anything, naming the field.
func (o *Options) Validate() error {
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if ip := net.ParseIP(o.IP); ip == nil {
		return &ConfigError{"--ip", fmt.Errorf("%q is not an IP address", o.IP)}
	}
	if o.Port < 0 || o.Port > 65535 {
		return &ConfigError{"--port", fmt.Errorf("%d is outside 0..65535", o.Port)}
	}
	if o.MetricsPort < 0 || o.MetricsPort > 65535 {
		return &ConfigError{"--metrics-port", fmt.Errorf("%d is outside 0..65535", o.MetricsPort)}
	}
	if o.Port != 0 && o.Port == o.MetricsPort {
		return &ConfigError{"--metrics-port", errors.New("must differ from --port")}
	}
	for _, p := range []struct {
		flag string
		port int
	}{{"--port", o.Port}, {"--metrics-port", o.MetricsPort}} {
		if p.port == 0 {
			continue
		}
		if err := portFree(o.IP, p.port); err != nil {
			return &ConfigError{p.flag, err}
		}
	}
	if len(o.Namespaces) == 0 {
		o.Namespaces = []string{"default"}
	}
	for _, ns := range o.Namespaces {
		if ns == "" {
			return &ConfigError{"--namespace", errors.New("must not be empty")}
		}
	}
	if o.DBFile != "" {
		if err := checkDBFile(o.DBFile); err != nil {
			return &ConfigError{"--db-file", err}
		}
	}
	switch o.LogLevel {
	case "":
		o.LogLevel = "warn"
	case "debug", "info", "warn", "error":
	default:
		return &ConfigError{"--log-level", fmt.Errorf("%q is not debug, info, warn or error", o.LogLevel)}
	}
	for k := range o.DynamicConfig {
		if k == "" {
			return &ConfigError{"--dynamic-config-value", errors.New("key must not be empty")}
		}
	}
	return nil
}

func portFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is not available: %w", port, ip, err)
	}
	return l.Close()
}

var sqliteMagic = []byte("SQLite format 3\x00")

// checkDBFile refuses a file the server could not use: a missing directory,
// something that is not a regular file, a file that is not SQLite, or one we
// cannot open for writing.
func checkDBFile(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory of %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	st, err = os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("cannot create %s: %w", path, err)
		}
		f.Close()
		return os.Remove(path)
	}
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot open %s for writing: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	n, _ := io.ReadFull(f, head)
	if n > 0 && !bytes.Equal(head[:n], sqliteMagic[:n]) || n > 0 && n < len(sqliteMagic) {
		return fmt.Errorf("%s is not a SQLite database", path)
	}
	return nil
}

// Start validates the options, prepares the database and starts the server.
func Start(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Port == 0 {
		p, err := freePort(o.IP)
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	sqlConf, persistence, err := prepareSQLite(o)
	if err != nil {
		return nil, err
	}
	conf, err := serverConfig(o, sqlConf)
	if err != nil {
		return nil, err
	}
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: o.LogLevel, Format: "json"}))
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("claim mapper: %w", err)
	}
	dyn := dynamicconfig.StaticClient{}
	shown := map[string]string{}
	for _, src := range []map[string]any{defaultDynamicConfig, o.DynamicConfig} {
		for k, v := range src {
			dyn[dynamicconfig.MakeKey(k)] = v
			shown[k] = fmt.Sprint(v)
		}
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, svc := range conf.Services {
		hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(o.IP, strconv.Itoa(svc.RPC.GRPCPort)))
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	info := Info{
		Address:       net.JoinHostPort(o.IP, strconv.Itoa(o.Port)),
		Namespaces:    o.Namespaces,
		Persistence:   persistence,
		ServerVersion: headers.ServerVersion,
		DynamicConfig: shown,
		PID:           os.Getpid(),
	}
	if o.MetricsPort > 0 {
		info.MetricsURL = fmt.Sprintf("http://%s/metrics", net.JoinHostPort(o.IP, strconv.Itoa(o.MetricsPort)))
	}
	return &Server{srv: srv, info: info}, nil
}

// Info describes the running server.
func (s *Server) Info() Info { return s.info }

// Stop shuts the server down cleanly.
func (s *Server) Stop() error { return s.srv.Stop() }

func prepareSQLite(o Options) (*config.SQL, string, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	persistence := "sqlite (in memory)"
	if o.DBFile == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		conf.DatabaseName = fmt.Sprintf("durabench-%d", rand.Int64())
	} else {
		// Keys that are not query parameters become pragmas.
		conf.ConnectAttributes = map[string]string{"mode": "rwc", "journal_mode": "wal", "busy_timeout": "10000"}
		conf.DatabaseName = o.DBFile
		persistence = "sqlite file " + o.DBFile
	}
	// A file that is new or empty gets the schema; an existing database keeps
	// its data. The SQLite plugin creates the schema of an in-memory database
	// itself.
	if o.DBFile != "" {
		st, err := os.Stat(o.DBFile)
		if errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0) {
			if err := sqliteschema.SetupSchema(conf); err != nil {
				return nil, "", &ConfigError{"--db-file", fmt.Errorf("setting up schema: %w", err)}
			}
		}
	}
	return conf, persistence, createNamespaces(conf, o.Namespaces)
}

func createNamespaces(conf *config.SQL, names []string) error {
	var nss []*sqliteschema.NamespaceConfig
	for _, ns := range names {
		c, err := sqliteschema.NewNamespaceConfig(clusterName, ns, false, map[string]enumspb.IndexedValueType{
			"DurabenchScenario": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		})
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		nss = append(nss, c)
	}
	if err := sqliteschema.CreateNamespaces(conf, nss...); err != nil {
		return &ConfigError{"--db-file", fmt.Errorf("registering namespaces: %w", err)}
	}
	return nil
}

func serverConfig(o Options, sqlConf *config.SQL) (*config.Config, error) {
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = o.IP
	if o.MetricsPort > 0 {
		conf.Global.Metrics = &metrics.Config{Prometheus: &metrics.PrometheusConfig{
			ListenAddress: net.JoinHostPort(o.IP, strconv.Itoa(o.MetricsPort)),
			HandlerPath:   "/metrics",
		}}
	}
	conf.Persistence.DefaultStore = "sqlite"
	conf.Persistence.VisibilityStore = "sqlite"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlConf}}
	httpPort, err := freePort(o.IP)
	if err != nil {
		return nil, err
	}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCAddress:             net.JoinHostPort(o.IP, strconv.Itoa(o.Port)),
			HTTPAddress:            net.JoinHostPort(o.IP, strconv.Itoa(httpPort)),
			ClusterID:              "5d0f6a3e-8d1c-4b7e-9f2a-64757261626e", // fixed, so a restart on the same file agrees
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		var svc config.Service
		svc.RPC.BindOnIP = o.IP
		if name == "frontend" {
			svc.RPC.GRPCPort = o.Port
			svc.RPC.HTTPPort = httpPort
		} else if svc.RPC.GRPCPort, err = freePort(o.IP); err != nil {
			return nil, err
		}
		conf.Services[name] = svc
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
	return &conf, nil
}

// freePort asks the kernel for a free port. Another process may take it
// before the server binds; the server then fails to start with a clear error.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
