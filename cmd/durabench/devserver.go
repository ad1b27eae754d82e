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
	fs.Var(&namespaces, "namespace", "namespace to register (repeatable; default \"default\")")
	fs.Var(&dyn, "dynamic-config-value", "dynamic config KEY=VALUE, VALUE in YAML (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o.Namespaces = namespaces
	o.DynamicConfig = map[string]any{}
	for _, kv := range dyn {
		k, v, err := devserver.ParseDynamicConfigValue(kv)
		if err != nil {
			return usagef("--dynamic-config-value: %v", err)
		}
		o.DynamicConfig[k] = v
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := devserver.Start(o)
	var ce *devserver.ConfigError
	if errors.As(err, &ce) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	// One JSON line announces readiness; the harness reads it.
	b, _ := json.Marshal(struct {
		Ready bool `json:"ready"`
		devserver.Info
	}{true, srv.Info()})
	fmt.Fprintln(stdout, string(b))
	<-ctx.Done()
	fmt.Fprintln(stderr, "durabench devserver: shutting down")
	if err := srv.Stop(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}
