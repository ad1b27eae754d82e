package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/durabench/durabench/harness/devserver"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runDevServer(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("devserver", stderr)
	var o devserver.Options
	var namespaces, dyn multiFlag
	fs.StringVar(&o.IP, "ip", "127.0.0.1", "address to bind")
	fs.IntVar(&o.Port, "port", 7233, "frontend gRPC port (0 picks a free port)")
	fs.IntVar(&o.MetricsPort, "metrics-port", 0, "Prometheus /metrics port (0 disables)")
	fs.StringVar(&o.DBFile, "db-file", "", "SQLite database file; empty keeps everything in memory")
	fs.StringVar(&o.LogLevel, "log-level", "warn", "server log level: debug, info, warn, error (logs go to stderr)")
	fs.StringVar(&o.Persistence, "persistence", "sqlite", "sqlite, postgres or mysql (mysql: MySQL 8, or MariaDB with visibility elsewhere)")
	fs.StringVar(&o.DSN, "dsn", "", "main store for postgres or mysql: postgres://USER[:PASS]@HOST:PORT/DB or mysql://USER[:PASS]@HOST:PORT/DB (created and its schema set up by the server's schema tool)")
	fs.StringVar(&o.VisibilityDSN, "visibility-dsn", "", "visibility store, postgres:// or mysql:// (default: the --dsn server, database DB_visibility)")
	fs.IntVar(&o.HistoryShards, "history-shards", 1, "number of history shards; a database keeps the number it was created with")
	fs.StringVar(&o.ArchivalDir, "archival-dir", "", "enable the filestore archiver for history and visibility under this existing directory")
	fs.StringVar(&o.JWKSURL, "auth-jwks-url", "", "enable the default JWT claim mapper and authorizer with keys from this JWKS URL (claim \"permissions\")")
	services := fs.String("services", "frontend,history,matching,worker", "the server's services this process runs; a subset makes it a cluster member (needs --persistence postgres or mysql)")
	fs.BoolVar(&o.Cluster, "cluster", false, "join a cluster: members find each other through the main store's cluster_membership table")
	fs.StringVar(&o.FrontendAddress, "frontend-address", "", "HOST:PORT of a cluster frontend, for a member without the frontend service")
	drop := fs.Bool("drop-databases", false, "drop the databases named by --dsn and --visibility-dsn, then exit")
	fs.Var(&namespaces, "namespace", "namespace to register (repeatable; default \"default\")")
	fs.Var(&dyn, "dynamic-config-value", "dynamic config KEY=VALUE, VALUE in YAML (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o.Namespaces = namespaces
	o.Services = strings.Split(*services, ",")
	o.DynamicConfig = map[string]any{}
	for _, kv := range dyn {
		k, v, err := devserver.ParseDynamicConfigValue(kv)
		if err != nil {
			return usagef("--dynamic-config-value: %v", err)
		}
		o.DynamicConfig[k] = v
	}
	if *drop {
		err := devserver.DropDatabases(o)
		var ce *devserver.ConfigError
		if errors.As(err, &ce) {
			return usageError{err}
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := devserver.Start(o)
	var ce *devserver.ConfigError
	if errors.As(err, &ce) {
		return usageError{err}
	}
	var ue *devserver.UnreachableError
	if errors.As(err, &ue) {
		return unavailableError{err}
	}
	if err != nil {
		return err
	}
	// One JSON line announces readiness; the harness reads it.
	info := srv.Info()
	info.Ready = true
	b, _ := json.Marshal(info)
	fmt.Fprintln(stdout, string(b))
	<-ctx.Done()
	fmt.Fprintln(stderr, "durabench devserver: shutting down")
	if err := srv.Stop(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}
