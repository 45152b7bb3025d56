// Package logevery keeps a log line that repeats (the same failure on every event,
// every scrape, every retry) to one an Interval, the line logged saying how many were
// held back since the last: the failure stays visible without flooding the log, and
// the exact counts are the metrics' to give. The line logged carries that count as the
// attribute suppressed, in every package, so that one grep finds every such line.
package logevery
