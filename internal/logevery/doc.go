// Package logevery keeps a log line that repeats (the same failure on every event,
// every scrape, every retry) to one an Interval, the line logged saying how many were
// held back since the last: the failure stays visible without flooding the log, and
// the exact counts are the metrics' to give.
package logevery
