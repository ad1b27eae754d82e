// Package pf measures performance (PF-01..PF-03): the latency of one durable
// step and where it goes, fan-out throughput and contention, and payload
// limits with their offloading. Figures are timed from the client, carry
// their sample counts, percentiles and bootstrap intervals, and are drawn as
// charts in the report.
package pf
