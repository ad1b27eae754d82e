// Package schedules is the schedule manager of the background agent:
// create, get, list, update, pause, resume, delete, trigger, run history and
// cumulative cost, over Temporal Schedules (which fire the runs) and the
// store (which holds the business records and is the truth about them).
// Every rule is enforced with a RuleError naming it. A create writes its row
// (status creating, counted in quotas) before Temporal; an update writes the
// store first, conditional on the version read, and only its winner writes
// Temporal, from the row as the store then has it; a request that loses a
// race never writes its own idea of the schedule to Temporal. Pause and
// resume are idempotent; a delete is complete or reported as failed; a
// manual trigger obeys the overlap policy and a rate. Reconcile repairs
// drift between the two in both directions, specs included.
package schedules
