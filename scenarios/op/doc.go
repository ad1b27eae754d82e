// Package op measures operations (OP-01..OP-07) on real servers: the
// deployment models, the management API (client and HTTP), the storage
// backends (SQLite, PostgreSQL, MariaDB with visibility on PostgreSQL) with
// the server's own schema tooling, scalability, retention and archival, high
// availability (crash recovery, two server nodes on one database) and tenant
// isolation (namespaces, per-namespace rate limits, JWT authorization).
package op
