// Package cp measures compensation and recovery (CP-01..CP-04) on the real
// embedded server: sagas, resuming from the failed step (fix and continue,
// reset, activity pause), manual intervention through the API, and dead
// letters.
package cp
