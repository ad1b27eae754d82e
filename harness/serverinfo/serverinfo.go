// Package serverinfo is what `durabench devserver` announces when it is
// ready, one JSON line on stdout: the types are shared by the server (which
// links the Temporal server) and the harness (which must not).
package serverinfo

// Info describes a started server.
type Info struct {
	Ready         bool              `json:"ready"`
	Address       string            `json:"address"`
	HTTPAddress   string            `json:"http_address"` // the frontend's HTTP API (grpc-gateway)
	MetricsURL    string            `json:"metrics_url,omitempty"`
	Namespaces    []string          `json:"namespaces"`
	Services      []string          `json:"services"`             // the server's services this process runs
	Membership    []string          `json:"membership,omitempty"` // a cluster member's ringpop addresses, per service
	Persistence   string            `json:"persistence"`
	HistoryShards int               `json:"history_shards"`
	Schema        []Schema          `json:"schema,omitempty"` // SQL stores: what the schema tool found and did
	ArchivalDir   string            `json:"archival_dir,omitempty"`
	Authorization string            `json:"authorization,omitempty"`
	ServerVersion string            `json:"server_version"`
	DynamicConfig map[string]string `json:"dynamic_config"`
	PID           int               `json:"pid"`
}

// Schema is what the server's schema tool found in one SQL store and what it
// did there when the server started.
type Schema struct {
	Store          string `json:"store"`           // main or visibility
	Plugin         string `json:"plugin"`          // the server's SQL plugin, e.g. postgres12_pgx
	Database       string `json:"database"`        // database name
	DBServer       string `json:"db_server"`       // product and version of the database server
	VersionBefore  string `json:"version_before"`  // schema version found, "" on a new database
	Version        string `json:"version"`         // schema version after the update
	UpdatesApplied int    `json:"updates_applied"` // rows the update added to schema_update_history
	HistoryRows    int    `json:"history_rows"`    // rows in schema_update_history afterwards
}
