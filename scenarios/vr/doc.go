// Package vr measures versioning (VR-01..VR-04) on the real embedded server:
// drain and deploy, GetVersion branches replaying v1 histories, task-queue
// routing and Worker Deployments (pinned, auto-upgrade, ramp, drain and
// retire), breaking-change detection by replay, migration, and schema
// evolution of payloads. The v1 and v2 code of the workflows lives in
// packages of its own under flows/, compiled into this one test binary.
package vr
