package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// raftLogger is the hclog.Logger that Raft, its transport and its snapshot store log
// through: it writes their lines with the node's slog logger, so that they take the
// format and the output of pmd's own (pmd serve --log-format json: one JSON object a
// line) and slog's levels. An hclog logger of its own wrote hclog's text to stderr
// whatever the format, in the middle of the JSON lines a log shipper parses.
type raftLogger struct {
	l       *slog.Logger
	name    string        // the message's prefix: "raft", or what Named made of it
	level   *atomic.Int32 // the least hclog.Level written; shared with the loggers made from this one
	implied []any         // the arguments of With, for ImpliedArgs
}

// newRaftLogger writes Raft's warnings and errors with l. Raft's info lines say what it
// does at every step (each election's votes, each peer's pipeline); pmd's own lines say
// what an operator needs of that ("cluster: leading", "cluster: joined").
func newRaftLogger(l *slog.Logger) *raftLogger {
	level := new(atomic.Int32)
	level.Store(int32(hclog.Warn))
	return &raftLogger{l: l, name: "raft", level: level}
}

// slogLevel is the slog level of an hclog level: Trace below Debug, as slog suggests for
// levels of its own, and a line with no level (hclog.NoLevel) at Info.
func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (r *raftLogger) enabled(level hclog.Level) bool {
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	least := hclog.Level(r.level.Load())
	return level >= least && level < hclog.Off && least < hclog.Off &&
		r.l.Enabled(context.Background(), slogLevel(level))
}

// slogArgs is args with their values as hclog would write them: a formatted value
// (hclog.Fmt, which Raft gives the configuration's servers in) as its text, an error as
// its message, and any other value but a string, number, boolean or nil as %v writes it
// (a time.Duration as "1.2s", a raft.Server as "{Voter n2 addr}"). slog would write a
// Fmt as the list of its format and operands, a duration as integer nanoseconds and a
// struct as a JSON object.
func slogArgs(args []any) []any {
	out := slices.Clone(args)
	for i := 1; i < len(out); i += 2 {
		switch v := out[i].(type) {
		case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		case hclog.Format:
			if len(v) > 0 {
				if format, ok := v[0].(string); ok {
					out[i] = fmt.Sprintf(format, v[1:]...)
				}
			}
		case error:
			out[i] = v.Error()
		default:
			out[i] = fmt.Sprintf("%v", v)
		}
	}
	return out
}

func (r *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	if !r.enabled(level) {
		return
	}
	r.l.Log(context.Background(), slogLevel(level), r.name+": "+msg, slogArgs(args)...)
}

func (r *raftLogger) Trace(msg string, args ...any) { r.Log(hclog.Trace, msg, args...) }
func (r *raftLogger) Debug(msg string, args ...any) { r.Log(hclog.Debug, msg, args...) }
func (r *raftLogger) Info(msg string, args ...any)  { r.Log(hclog.Info, msg, args...) }
func (r *raftLogger) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLogger) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }

func (r *raftLogger) IsTrace() bool { return r.enabled(hclog.Trace) }
func (r *raftLogger) IsDebug() bool { return r.enabled(hclog.Debug) }
func (r *raftLogger) IsInfo() bool  { return r.enabled(hclog.Info) }
func (r *raftLogger) IsWarn() bool  { return r.enabled(hclog.Warn) }
func (r *raftLogger) IsError() bool { return r.enabled(hclog.Error) }

func (r *raftLogger) ImpliedArgs() []any { return slices.Clone(r.implied) }

func (r *raftLogger) With(args ...any) hclog.Logger {
	return &raftLogger{l: r.l.With(slogArgs(args)...), name: r.name, level: r.level, implied: append(slices.Clone(r.implied), args...)}
}

func (r *raftLogger) Name() string { return r.name }

func (r *raftLogger) Named(name string) hclog.Logger {
	return &raftLogger{l: r.l, name: r.name + "." + name, level: r.level, implied: r.implied}
}

func (r *raftLogger) ResetNamed(name string) hclog.Logger {
	return &raftLogger{l: r.l, name: name, level: r.level, implied: r.implied}
}

func (r *raftLogger) SetLevel(level hclog.Level) { r.level.Store(int32(level)) }
func (r *raftLogger) GetLevel() hclog.Level      { return hclog.Level(r.level.Load()) }

func (r *raftLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(r.StandardWriter(opts), "", 0)
}

// StandardWriter writes each line at opts.ForceLevel, else at Info.
func (r *raftLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return raftLogWriter{r: r, level: level}
}

type raftLogWriter struct {
	r     *raftLogger
	level hclog.Level
}

func (w raftLogWriter) Write(p []byte) (int, error) {
	w.r.Log(w.level, strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
