// Package schedules is the schedule manager of the background agent:
// create, get, list, update, pause, resume, delete, trigger, run history and
// cumulative cost, over Temporal Schedules (which fire the runs) and the
// store (which holds the business records). Every rule is enforced with a
// RuleError naming it. Writes go to Temporal first, then the store, and are
// rolled back in Temporal when the store refuses; pause and resume are
// idempotent; a delete is complete or reported as failed. Reconcile repairs
// drift between the two in both directions.
package schedules
