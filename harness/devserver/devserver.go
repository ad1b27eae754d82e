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
	"net/url"
	"os"
	"path/filepath"
	"slices"
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

	"github.com/durabench/durabench/harness/serverinfo"
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

	// Persistence is sqlite (the default), postgres or mysql. For postgres
	// and mysql, DSN names the main store's database (created, and its
	// schema set up and updated with the server's own schema tool, if
	// needed) and VisibilityDSN the visibility store's (default: the same
	// server, the database name with the suffix "_visibility"). A postgres://
	// VisibilityDSN beside a mysql:// DSN keeps visibility on PostgreSQL.
	Persistence   string
	DSN           string
	VisibilityDSN string
	// HistoryShards is the number of history shards (default 1); a database
	// keeps the number it was first started with.
	HistoryShards int
	// ArchivalDir enables the filestore archiver for history and visibility,
	// under this directory, on the server and on the namespaces it registers.
	ArchivalDir string
	// JWKSURL enables the server's default JWT claim mapper and authorizer,
	// with signing keys fetched from this URL (permissions claim
	// "permissions").
	JWKSURL string
	// Services this process runs, default all four. A subset, or Cluster,
	// makes the process one member of a cluster whose members find each
	// other through the main store's cluster_membership table (ringpop on
	// the bind address), so it needs a SQL store the members share.
	Services []string
	Cluster  bool
	// FrontendAddress is a frontend of the cluster, for a member without
	// one (its worker service and cluster metadata point there).
	FrontendAddress string
}

// allServices are the server's services, in the order they are listed.
var allServices = []string{"frontend", "history", "matching", "worker"}

// ring reports whether the process joins a membership ring instead of
// knowing every service's address statically.
func (o *Options) ring() bool { return o.Cluster || len(o.Services) < len(allServices) }

func (o *Options) has(service string) bool { return slices.Contains(o.Services, service) }

// Info describes a started server; `durabench devserver` prints it as JSON.
type Info = serverinfo.Info

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
	if o.HistoryShards == 0 {
		o.HistoryShards = 1
	}
	if o.HistoryShards < 1 || o.HistoryShards > 1024 {
		return &ConfigError{"--history-shards", fmt.Errorf("%d is outside 1..1024", o.HistoryShards)}
	}
	if err := validatePersistence(o); err != nil {
		return err
	}
	if o.ArchivalDir != "" {
		if st, err := os.Stat(o.ArchivalDir); err != nil || !st.IsDir() {
			return &ConfigError{"--archival-dir", fmt.Errorf("%q is not an existing directory", o.ArchivalDir)}
		}
	}
	if o.JWKSURL != "" {
		if u, err := url.Parse(o.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &ConfigError{"--auth-jwks-url", fmt.Errorf("%q is not an http(s) URL", o.JWKSURL)}
		}
	}
	if err := validateServices(o); err != nil {
		return err
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

func validateServices(o *Options) error {
	if len(o.Services) == 0 {
		o.Services = slices.Clone(allServices)
	}
	seen := map[string]bool{}
	for _, s := range o.Services {
		if !slices.Contains(allServices, s) {
			return &ConfigError{"--services", fmt.Errorf("%q is not one of frontend, history, matching, worker", s)}
		}
		if seen[s] {
			return &ConfigError{"--services", fmt.Errorf("%q is listed twice", s)}
		}
		seen[s] = true
	}
	if !o.ring() {
		return nil
	}
	if o.Persistence == "sqlite" {
		return &ConfigError{"--services", errors.New("a cluster member (--cluster or a subset of services) needs a store its members share: --persistence postgres or mysql")}
	}
	if !o.has("frontend") {
		if _, _, err := net.SplitHostPort(o.FrontendAddress); err != nil {
			return &ConfigError{"--frontend-address", fmt.Errorf("a member without the frontend service needs the HOST:PORT of one: %q", o.FrontendAddress)}
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
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: o.LogLevel, Format: "json"}))
	stores, err := prepareStores(o, logger)
	if err != nil {
		return nil, err
	}
	conf, err := serverConfig(o, stores)
	if err != nil {
		return nil, err
	}
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
			cv, err := constrainedValue(k, v)
			if err != nil {
				return nil, &ConfigError{"--dynamic-config-value", err}
			}
			dyn[dynamicconfig.MakeKey(k)] = cv
			shown[k] = fmt.Sprint(v)
		}
	}
	opts := []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(runs(o)),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	}
	if !o.ring() {
		hosts := map[primitives.ServiceName]static.Hosts{}
		for name, svc := range conf.Services {
			hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(o.IP, strconv.Itoa(svc.RPC.GRPCPort)))
		}
		opts = append(opts, temporal.WithStaticHosts(hosts))
	}
	srv, err := temporal.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	info := Info{
		Namespaces:    o.Namespaces,
		Services:      o.Services,
		Persistence:   stores.describe,
		HistoryShards: o.HistoryShards,
		Schema:        stores.schema,
		ArchivalDir:   o.ArchivalDir,
		ServerVersion: headers.ServerVersion,
		DynamicConfig: shown,
		PID:           os.Getpid(),
	}
	if o.has("frontend") {
		info.Address = net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
		info.HTTPAddress = net.JoinHostPort(o.IP, strconv.Itoa(conf.Services["frontend"].RPC.HTTPPort))
	}
	if o.ring() {
		for _, name := range o.Services {
			info.Membership = append(info.Membership, fmt.Sprintf("%s %s", name, net.JoinHostPort(o.IP, strconv.Itoa(conf.Services[name].RPC.MembershipPort))))
		}
	}
	if o.JWKSURL != "" {
		info.Authorization = "default JWT claim mapper and authorizer, keys from " + o.JWKSURL
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

// stores are the server's data stores, prepared.
type stores struct {
	main, visibility *config.SQL
	describe         string
	schema           []serverinfo.Schema
}

// prepareStores readies the database(s) and registers the namespaces.
func prepareStores(o Options, logger log.Logger) (stores, error) {
	if o.Persistence == "sqlite" {
		c, describe, err := prepareSQLite(o)
		return stores{main: c, visibility: c, describe: describe}, err
	}
	main, vis, err := sqlStores(o)
	if err != nil {
		return stores{}, err
	}
	st := stores{main: main, visibility: vis}
	for _, s := range []struct {
		name string
		c    *config.SQL
	}{{"main", main}, {"visibility", vis}} {
		info, err := prepareSQLStore(s.name, s.c, logger)
		if err != nil {
			return st, err
		}
		st.schema = append(st.schema, info)
	}
	st.describe = fmt.Sprintf("%s %s on %s (%s), visibility %s %s on %s (%s)",
		main.PluginName, main.DatabaseName, main.ConnectAddr, st.schema[0].DBServer,
		vis.PluginName, vis.DatabaseName, vis.ConnectAddr, st.schema[1].DBServer)
	return st, createNamespaces(main, o)
}

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
	return conf, persistence, createNamespaces(conf, o)
}

// createNamespaces registers the namespaces in the main store before the
// server starts (an existing one is kept as it is), as the temporal CLI's
// dev server does; the SQLite package's helper writes through the generic
// SQL plugin interface, so it serves PostgreSQL and MySQL too.
func createNamespaces(conf *config.SQL, o Options) error {
	var nss []*sqliteschema.NamespaceConfig
	for _, ns := range o.Namespaces {
		c, err := sqliteschema.NewNamespaceConfig(clusterName, ns, false, map[string]enumspb.IndexedValueType{
			"DurabenchScenario": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		})
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		if o.ArchivalDir != "" {
			enableArchival(c.Detail.Config, o.ArchivalDir)
		}
		nss = append(nss, c)
	}
	if err := sqliteschema.CreateNamespaces(conf, nss...); err != nil {
		return fmt.Errorf("registering namespaces in %s: %w", conf.DatabaseName, err)
	}
	return nil
}

func serverConfig(o Options, st stores) (*config.Config, error) {
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = o.IP
	if o.MetricsPort > 0 {
		conf.Global.Metrics = &metrics.Config{Prometheus: &metrics.PrometheusConfig{
			ListenAddress: net.JoinHostPort(o.IP, strconv.Itoa(o.MetricsPort)),
			HandlerPath:   "/metrics",
		}}
	}
	conf.Persistence.DefaultStore = "main"
	conf.Persistence.VisibilityStore = "visibility"
	conf.Persistence.NumHistoryShards = int32(o.HistoryShards)
	conf.Persistence.DataStores = map[string]config.DataStore{"main": {SQL: st.main}, "visibility": {SQL: st.visibility}}
	httpPort, err := freePort(o.IP)
	if err != nil {
		return nil, err
	}
	frontend := net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
	if !o.has("frontend") {
		frontend = o.FrontendAddress
	}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCAddress:             frontend,
			HTTPAddress:            net.JoinHostPort(o.IP, strconv.Itoa(httpPort)),
			ClusterID:              "5d0f6a3e-8d1c-4b7e-9f2a-64757261626e", // fixed, so a restart on the same file agrees
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	// Every service is configured, also those another process runs: the
	// membership monitor tracks the services the configuration lists.
	for _, name := range append(slices.Clone(allServices), string(primitives.InternalFrontendService)) {
		if name == string(primitives.InternalFrontendService) && !slices.Contains(runs(o), name) {
			continue
		}
		var svc config.Service
		svc.RPC.BindOnIP = o.IP
		if name == string(primitives.InternalFrontendService) {
			if svc.RPC.HTTPPort, err = freePort(o.IP); err != nil {
				return nil, err
			}
		}
		if name == "frontend" {
			svc.RPC.GRPCPort = o.Port
			svc.RPC.HTTPPort = httpPort
		} else if svc.RPC.GRPCPort, err = servicePort(o); err != nil {
			return nil, err
		}
		if o.ring() {
			if svc.RPC.MembershipPort, err = servicePort(o); err != nil {
				return nil, err
			}
		}
		conf.Services[name] = svc
	}
	archivalConfig(&conf, o.ArchivalDir)
	if o.JWKSURL != "" {
		conf.Global.Authorization = config.Authorization{
			JWTKeyProvider:       config.JWTKeyProvider{KeySourceURIs: []string{o.JWKSURL}, RefreshInterval: time.Minute},
			PermissionsClaimName: "permissions",
			Authorizer:           "default",
			ClaimMapper:          "default",
		}
	}
	if o.JWKSURL == "" { // otherwise the server's clients use the internal frontend
		conf.PublicClient.HostPort = frontend
	}
	return &conf, nil
}

// runs lists the services this process starts. The server's own worker
// service calls the frontend without credentials; under an authorizer it
// must go through the internal frontend, which grants its callers
// system:admin (it listens on the bind address, loopback here, and is not
// announced).
func runs(o Options) []string {
	if o.JWKSURL != "" && o.has("frontend") {
		return append(slices.Clone(o.Services), string(primitives.InternalFrontendService))
	}
	return o.Services
}

// constrainedValue turns a YAML list of {constraints, value} maps into the
// server's constrained values (loaded by the server's own YAML loader), so
// that a limit can be scoped to one namespace; any other value is kept.
func constrainedValue(key string, v any) (any, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return v, nil
	}
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return v, nil
		}
		if _, ok := m["value"]; !ok {
			return v, nil
		}
	}
	raw, err := yaml.Marshal(list)
	if err != nil {
		return nil, err
	}
	var lr dynamicconfig.YamlLoader
	lr.LoadValue(dynamicconfig.MakeKey(key), raw)
	if err := lr.Err(); err != nil {
		return nil, fmt.Errorf("value of %s: %w", key, err)
	}
	return lr.Map[dynamicconfig.MakeKey(key)], nil
}

// servicePort is a free port for an internal service. A cluster member's
// ports are announced in cluster_membership, whose PostgreSQL schema keeps
// them in a smallint: the kernel's ephemeral ports (32768 and up) overflow
// it, so members take ports below 32768.
func servicePort(o Options) (int, error) {
	if !o.ring() {
		return freePort(o.IP)
	}
	for range 100 {
		p := 20000 + rand.IntN(12768)
		if portFree(o.IP, p) == nil {
			return p, nil
		}
	}
	return 0, errors.New("no free port in 20000..32767 for a cluster member")
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
