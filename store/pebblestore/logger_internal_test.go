package pebblestore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLoggerRateLimited: on a full disk Pebble retries its flush without
// pause and logs each failure (hundreds of lines a second); the store's
// logger keeps one line per message format per interval, naming the
// directory and counting what it left out.
func TestLoggerRateLimited(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	l := newPebbleLogger(slog.New(slog.NewTextHandler(&buf, nil)), "/data")
	l.now = func() time.Time { return now }
	for i := range 1000 {
		l.Errorf("background error: write %06d.sst: no space left on device", i)
	}
	l.Errorf("another error")
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("1000 errors of one format and one other: %d lines, want 2:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "dir=/data") {
		t.Errorf("not an error naming the directory: %s", buf.String())
	}
	buf.Reset()
	now = now.Add(time.Minute)
	l.Errorf("background error: write %06d.sst: no space left on device", 1000)
	if !strings.Contains(buf.String(), "suppressed=999") {
		t.Errorf("after the interval: %q, want the count of the lines left out", buf.String())
	}
}
