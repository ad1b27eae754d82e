package harness

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// Backend is the persistence of a dedicated dev server.
type Backend string

// The backends this machine offers. MariaDB keeps the main store through
// the server's mysql8 plugin and visibility on PostgreSQL: the mysql8
// visibility schema does not set up on MariaDB (OP-03 records the error).
const (
	SQLite     Backend = ""
	PostgreSQL Backend = "postgresql"
	MariaDB    Backend = "mariadb"
	// MariaDBVisibility is MariaDB for both stores, for the check that
	// records how the visibility schema fails there.
	MariaDBVisibility Backend = "mariadb-visibility"
)

// Where the SQL database servers are: a URL without a database, e.g.
// postgres://postgres@127.0.0.1:5432.
const (
	EnvPostgres = "DURABENCH_POSTGRES"
	EnvMySQL    = "DURABENCH_MYSQL"
)

func serverURL(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

func postgresURL() string { return serverURL(EnvPostgres, "postgres://postgres@127.0.0.1:5432") }
func mysqlURL() string    { return serverURL(EnvMySQL, "mysql://root@127.0.0.1:3306") }

// String names the backend for evidence.
func (b Backend) String() string {
	switch b {
	case SQLite:
		return "SQLite"
	case PostgreSQL:
		return "PostgreSQL"
	case MariaDB:
		return "MariaDB (visibility on PostgreSQL)"
	case MariaDBVisibility:
		return "MariaDB (visibility on MariaDB)"
	}
	return string(b)
}

// storeArgs are the devserver flags that put both stores of database db on
// the backend.
func (b Backend) storeArgs(db string) []string {
	switch b {
	case PostgreSQL:
		return []string{"--persistence", "postgres", "--dsn", postgresURL() + "/" + db}
	case MariaDB:
		return []string{"--persistence", "mysql", "--dsn", mysqlURL() + "/" + db, "--visibility-dsn", postgresURL() + "/" + db + "_visibility"}
	case MariaDBVisibility:
		return []string{"--persistence", "mysql", "--dsn", mysqlURL() + "/" + db}
	}
	return nil
}

// servers are the database servers the backend needs.
func (b Backend) servers() []string {
	switch b {
	case PostgreSQL:
		return []string{postgresURL()}
	case MariaDB:
		return []string{mysqlURL(), postgresURL()}
	case MariaDBVisibility:
		return []string{mysqlURL()}
	}
	return nil
}

// BackendAvailable reports whether the database servers of b answer on
// their port; if not, the reason is what the evidence should say.
func (e *Env) BackendAvailable(b Backend) (bool, string) {
	if e.External {
		return false, "the server is external (" + EnvAddress + " is set): its persistence is not the harness's to choose"
	}
	for _, s := range b.servers() {
		u, err := url.Parse(s)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", s, err)
		}
		conn, err := net.DialTimeout("tcp", u.Host, 3*time.Second)
		if err != nil {
			return false, fmt.Sprintf("%s needs the database server at %s, which does not answer: %v", b, u.Host, err)
		}
		conn.Close()
	}
	return true, ""
}

// databaseName is a database of its own for one dedicated server.
func databaseName(pkg string) (string, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "durabench_" + pkg + "_" + hex.EncodeToString(b), nil
}
