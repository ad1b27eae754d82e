package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/durabench/durabench/agent/api"
	"github.com/durabench/durabench/agent/llm"
	"github.com/durabench/durabench/agent/schedules"
	"github.com/durabench/durabench/agent/server"
	"github.com/durabench/durabench/agent/workflows"
)

// Environment variables `durabench agent serve` reads; a flag given on the
// command line wins.
const (
	envAgentPostgres = "DURABENCH_AGENT_POSTGRES_DSN"
	envAgentKeys     = "DURABENCH_AGENT_API_KEYS"
	envAgentModel    = "DURABENCH_AGENT_MODEL"
	envAgentNotify   = "DURABENCH_AGENT_NOTIFY_WEBHOOK"
	envLLMBaseURL    = "OPENAI_BASE_URL"
	envLLMAPIKey     = "OPENAI_API_KEY"
	envTemporalAddr  = "TEMPORAL_ADDRESS"
	envTemporalNS    = "TEMPORAL_NAMESPACE"
)

func runAgent(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		return usagef("usage: durabench agent serve [flags] (see durabench agent serve -h)")
	}
	return runAgentServe(args[1:], stdout, stderr)
}

func runAgentServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent serve", stderr)
	o := server.Options{Config: schedules.DefaultConfig(), Settings: workflows.DefaultSettings()}
	lim := &o.Config.Limits
	var keys multiFlag
	var priceIn, priceOut float64
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address of the HTTP API")
	fs.StringVar(&o.DataDir, "data-dir", "durabench-agent-data", "directory of the SQLite store and the embedded Temporal server's database")
	fs.StringVar(&o.TemporalAddress, "temporal-address", os.Getenv(envTemporalAddr), "Temporal frontend host:port; empty runs the embedded dev server (env "+envTemporalAddr+"; TLS and API key from TEMPORAL_* as the SDK reads them)")
	fs.IntVar(&o.TemporalPort, "temporal-port", 0, "port of the embedded dev server (0 picks a free one)")
	fs.StringVar(&o.Namespace, "namespace", envOr(envTemporalNS, "default"), "Temporal namespace (env "+envTemporalNS+")")
	fs.StringVar(&o.PostgresDSN, "postgres-dsn", os.Getenv(envAgentPostgres), "PostgreSQL DSN for the store; empty uses SQLite in --data-dir (env "+envAgentPostgres+")")
	fs.StringVar(&o.LLMBaseURL, "llm-base-url", os.Getenv(envLLMBaseURL), "OpenAI-compatible endpoint, e.g. https://api.openai.com/v1; empty runs the local deterministic LLM (env "+envLLMBaseURL+")")
	fs.StringVar(&o.LLMAPIKey, "llm-api-key", os.Getenv(envLLMAPIKey), "API key of the LLM endpoint (env "+envLLMAPIKey+")")
	fs.StringVar(&o.LLMModel, "llm-model", os.Getenv(envAgentModel), "model name at the LLM endpoint (env "+envAgentModel+")")
	fs.Float64Var(&priceIn, "llm-price-input", 0, "USD per million prompt tokens of --llm-model (default: a deliberately high rate)")
	fs.Float64Var(&priceOut, "llm-price-output", 0, "USD per million completion tokens of --llm-model")
	fs.StringVar(&o.NotifyWebhook, "notify-webhook", os.Getenv(envAgentNotify), "URL a run's report is POSTed to as JSON when it delivers to notify (retried; Idempotency-Key header); empty: the audit trail only (env "+envAgentNotify+")")
	fs.Var(&keys, "api-key", "API key as KEY=TENANT:USER (repeatable; env "+envAgentKeys+" takes a comma-separated list); none: one is generated and printed")
	fs.StringVar(&o.Config.TaskQueue, "task-queue", o.Config.TaskQueue, "Temporal task queue of the agent's workflows")
	fs.DurationVar(&o.ReconcileEvery, "reconcile-every", 10*time.Minute, "how often reconciliation runs (0: never)")
	fs.DurationVar(&lim.MinInterval, "min-interval", lim.MinInterval, "minimum time between any two fire times of a schedule")
	fs.Float64Var(&lim.MaxBudgetUSD, "max-budget-usd", lim.MaxBudgetUSD, "system cap of a run's budget in USD")
	fs.DurationVar(&o.Config.TriggerInterval, "min-trigger-interval", o.Config.TriggerInterval, "least time between two manual triggers of one schedule (0: no limit; a trigger while a run is in flight is refused all the same)")
	fs.IntVar(&lim.MaxPerUser, "max-per-user", lim.MaxPerUser, "live schedules per user")
	fs.IntVar(&lim.MaxPerTenant, "max-per-tenant", lim.MaxPerTenant, "live schedules per tenant")
	fs.Int64Var(&o.Settings.MaxConsecutiveFailures, "max-consecutive-failures", o.Settings.MaxConsecutiveFailures, "failed runs in a row that pause a schedule (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	spec := os.Getenv(envAgentKeys)
	for _, k := range keys {
		spec += "," + k
	}
	var err error
	if o.APIKeys, err = api.ParseKeys(spec); err != nil {
		return usagef("--api-key: %v", err)
	}
	switch {
	case o.LLMBaseURL != "" && o.LLMModel == "":
		return usagef("--llm-model: required with --llm-base-url")
	case priceIn < 0 || priceOut < 0:
		return usagef("--llm-price-input/--llm-price-output: must not be negative")
	case lim.MinInterval < 0:
		return usagef("--min-interval: must not be negative")
	case !(lim.MaxBudgetUSD >= 0):
		return usagef("--max-budget-usd: must be a number of at least 0")
	case lim.MaxPerUser < 0 || lim.MaxPerTenant < 0:
		return usagef("--max-per-user/--max-per-tenant: must not be negative")
	case o.ReconcileEvery < 0:
		return usagef("--reconcile-every: must not be negative")
	case o.Config.TriggerInterval < 0:
		return usagef("--min-trigger-interval: must not be negative")
	}
	lim.DefaultBudgetUSD = min(lim.DefaultBudgetUSD, lim.MaxBudgetUSD)
	o.LLMPrice = llm.Price{InputPerMTok: priceIn, OutputPerMTok: priceOut}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = server.Run(ctx, o, stdout, stderr)
	var ce *server.ConfigError
	if errors.As(err, &ce) {
		return usageError{err}
	}
	return err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
