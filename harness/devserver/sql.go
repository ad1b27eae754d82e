package devserver

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	mysqlplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/mysql"
	pgplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"

	"github.com/durabench/durabench/harness/serverinfo"
)

// UnreachableError is a database server that refused or did not answer the
// connection: the caller reports its checks as not measured (exit status 3).
type UnreachableError struct {
	Store string
	Addr  string
	Err   error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s store: database server %s unreachable: %v", e.Store, e.Addr, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// schemaNames are the server's embedded schema directories per plugin kind.
var schemaNames = map[string]map[string]string{
	"postgres": {"main": "postgresql/v12/temporal", "visibility": "postgresql/v12/visibility"},
	"mysql":    {"main": "mysql/v8/temporal", "visibility": "mysql/v8/visibility"},
}

// adminDB is the database a connection opens to create or drop another.
var adminDB = map[string]string{"postgres": "postgres", "mysql": ""}

func validatePersistence(o *Options) error {
	switch o.Persistence {
	case "", "sqlite":
		o.Persistence = "sqlite"
		if o.DSN != "" || o.VisibilityDSN != "" {
			return &ConfigError{"--dsn", errors.New("is for --persistence postgres or mysql; SQLite takes --db-file")}
		}
		return nil
	case "postgres", "mysql":
	default:
		return &ConfigError{"--persistence", fmt.Errorf("%q is not sqlite, postgres or mysql", o.Persistence)}
	}
	if o.DBFile != "" {
		return &ConfigError{"--db-file", fmt.Errorf("is for SQLite; --persistence %s takes --dsn", o.Persistence)}
	}
	if o.DSN == "" {
		return &ConfigError{"--dsn", fmt.Errorf("is required with --persistence %s", o.Persistence)}
	}
	if _, err := parseDSN(o.DSN, o.Persistence); err != nil {
		return &ConfigError{"--dsn", err}
	}
	if o.VisibilityDSN != "" {
		if _, err := parseDSN(o.VisibilityDSN, ""); err != nil {
			return &ConfigError{"--visibility-dsn", err}
		}
	}
	return nil
}

// parseDSN turns postgres://user:pass@host:port/db?attr=v or
// mysql://user:pass@host:port/db?attr=v into the server's SQL config. kind,
// if not empty, is the scheme required.
func parseDSN(dsn, kind string) (*config.SQL, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("does not parse as a URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "mysql" {
		return nil, fmt.Errorf("scheme %q must be postgres or mysql", u.Scheme)
	}
	if kind != "" && u.Scheme != kind {
		return nil, fmt.Errorf("scheme %q does not match --persistence %s", u.Scheme, kind)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("host %q must be HOST:PORT", u.Host)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.ContainsAny(db, "/\"`'; ") || strings.ToLower(db) != db {
		return nil, fmt.Errorf("database name %q must be one lowercase path segment without quotes, spaces or semicolons", db)
	}
	c := &config.SQL{
		PluginName: pgplugin.PluginNamePGX, DatabaseName: db, ConnectAddr: u.Host, ConnectProtocol: "tcp",
		User: u.User.Username(), ConnectAttributes: map[string]string{},
	}
	c.Password, _ = u.User.Password()
	if u.Scheme == "mysql" {
		c.PluginName = mysqlplugin.PluginName
	}
	for k, v := range u.Query() {
		c.ConnectAttributes[k] = v[len(v)-1]
	}
	return c, nil
}

// kindOf is postgres or mysql for a parsed config.
func kindOf(c *config.SQL) string {
	if c.PluginName == mysqlplugin.PluginName {
		return "mysql"
	}
	return "postgres"
}

// sqlStores parses the main and visibility stores of o.
func sqlStores(o Options) (main, vis *config.SQL, err error) {
	if main, err = parseDSN(o.DSN, o.Persistence); err != nil {
		return nil, nil, &ConfigError{"--dsn", err}
	}
	if o.VisibilityDSN != "" {
		if vis, err = parseDSN(o.VisibilityDSN, ""); err != nil {
			return nil, nil, &ConfigError{"--visibility-dsn", err}
		}
	} else {
		v := *main
		v.DatabaseName = main.DatabaseName + "_visibility"
		vis = &v
	}
	if kindOf(main) == "mysql" {
		// MariaDB has no transaction_isolation variable, which the plugin
		// sets by default; tx_isolation is known to both MariaDB and MySQL 8.
		main.ConnectAttributes = withIsolation(main.ConnectAttributes)
	}
	if kindOf(vis) == "mysql" {
		vis.ConnectAttributes = withIsolation(vis.ConnectAttributes)
	}
	return main, vis, nil
}

func withIsolation(attrs map[string]string) map[string]string {
	out := map[string]string{"tx_isolation": "'READ-COMMITTED'"}
	for k, v := range attrs {
		out[k] = v
	}
	if _, ok := attrs["transaction_isolation"]; ok {
		delete(out, "tx_isolation")
	}
	return out
}

// prepareSQLStore creates the database if it is missing, sets up the schema
// version tables on a new database, and updates the schema to the version
// embedded in the server, all with the server's own schema tool.
func prepareSQLStore(store string, c *config.SQL, logger log.Logger) (serverinfo.Schema, error) {
	kind := kindOf(c)
	info := serverinfo.Schema{Store: store, Plugin: c.PluginName, Database: c.DatabaseName}
	// The schema tool retries a refused connection and then reports only
	// that no connection was usable: dial first to say which server is down.
	conn0, err := net.DialTimeout("tcp", c.ConnectAddr, 5*time.Second)
	if err != nil {
		return info, &UnreachableError{Store: store, Addr: c.ConnectAddr, Err: err}
	}
	conn0.Close()
	create := *c
	if err := sqltool.DoCreateDatabase(&create, adminDB[kind], logger); err != nil {
		return info, fmt.Errorf("%s store: creating database %s: %w", store, c.DatabaseName, err)
	}
	conn, err := sqltool.NewConnection(c, logger)
	if err != nil {
		return info, fmt.Errorf("%s store: connecting to %s: %w", store, c.DatabaseName, err)
	}
	defer conn.Close()
	if info.DBServer, err = dbServer(c); err != nil {
		return info, fmt.Errorf("%s store: %w", store, err)
	}
	if v, err := conn.ReadSchemaVersion(); err == nil {
		info.VersionBefore = v
	} else if err := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
		return info, fmt.Errorf("%s store: schema setup on %s: %w", store, c.DatabaseName, err)
	}
	before, err := historyRows(c)
	if err != nil {
		return info, err
	}
	name := schemaNames[kind][store]
	if err := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{SchemaName: name}, logger).Run(); err != nil {
		reached, _ := conn.ReadSchemaVersion()
		return info, fmt.Errorf("%s store: schema update of %s to %s on %s (%s) stopped after version %s: %w", store, c.DatabaseName, name, info.DBServer, c.PluginName, reached, err)
	}
	if info.Version, err = conn.ReadSchemaVersion(); err != nil {
		return info, fmt.Errorf("%s store: reading schema version: %w", store, err)
	}
	if info.HistoryRows, err = historyRows(c); err != nil {
		return info, err
	}
	info.UpdatesApplied = info.HistoryRows - before
	return info, nil
}

// openRaw opens database/sql on a store with the drivers the server's
// plugins register, for the few reads the schema tool does not offer.
func openRaw(c *config.SQL) (*sql.DB, error) {
	if kindOf(c) == "mysql" {
		return sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s", c.User, c.Password, c.ConnectAddr, c.DatabaseName))
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(c.User, c.Password), Host: c.ConnectAddr, Path: "/" + c.DatabaseName, RawQuery: "sslmode=disable"}
	if c.Password == "" {
		u.User = url.User(c.User)
	}
	return sql.Open("pgx", u.String())
}

func queryString(c *config.SQL, q string) (string, error) {
	db, err := openRaw(c)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var s string
	if err := db.QueryRow(q).Scan(&s); err != nil {
		return "", fmt.Errorf("%s on %s: %w", q, c.DatabaseName, err)
	}
	return s, nil
}

// dbServer names the database server's product and version, e.g.
// "PostgreSQL 15.20" or "MariaDB 10.11.6".
func dbServer(c *config.SQL) (string, error) {
	if kindOf(c) == "postgres" {
		v, err := queryString(c, "SHOW server_version")
		return "PostgreSQL " + strings.Fields(v + " ")[0], err
	}
	v, err := queryString(c, "SELECT version()")
	if i := strings.Index(v, "-MariaDB"); i > 0 {
		return "MariaDB " + v[:i], err
	}
	return "MySQL " + v, err
}

func historyRows(c *config.SQL) (int, error) {
	db, err := openRaw(c)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM schema_update_history").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting schema_update_history on %s: %w", c.DatabaseName, err)
	}
	return n, nil
}

// DropDatabases drops the main and visibility databases o names, for a
// test that is done with them; PostgreSQL's are dropped after their
// connections are ended.
func DropDatabases(o Options) error {
	if err := validatePersistence(&o); err != nil {
		return err
	}
	if o.Persistence == "sqlite" {
		return &ConfigError{"--drop-databases", errors.New("is for --persistence postgres or mysql")}
	}
	main, vis, err := sqlStores(o)
	if err != nil {
		return err
	}
	logger := log.NewNoopLogger()
	var errs []error
	for _, c := range []*config.SQL{main, vis} {
		errs = append(errs, dropDatabase(c, logger))
	}
	return errors.Join(errs...)
}

func dropDatabase(c *config.SQL, logger log.Logger) error {
	kind := kindOf(c)
	if kind == "mysql" {
		d := *c
		return sqltool.DoDropDatabase(&d, adminDB[kind], logger)
	}
	admin := *c
	admin.DatabaseName = adminDB[kind]
	db, err := openRaw(&admin)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, c.DatabaseName); err != nil {
		return fmt.Errorf("ending connections to %s: %w", c.DatabaseName, err)
	}
	if _, err := db.Exec(fmt.Sprintf(`DROP DATABASE IF EXISTS "%s"`, c.DatabaseName)); err != nil {
		return fmt.Errorf("dropping %s: %w", c.DatabaseName, err)
	}
	return nil
}
