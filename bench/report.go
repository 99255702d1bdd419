package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// jsonRow is the -json output: one object per line, one per Result.
type jsonRow struct {
	Suite  string  `json:"suite"`
	Case   string  `json:"case"`
	System string  `json:"system"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
}

// writeJSON writes the median of every successful result, one object per
// line. Failed and skipped rows are left out (their error or reason went
// to stderr).
func writeJSON(w io.Writer, results []*Result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if r.Err != nil || r.Skipped != "" || len(r.Values) == 0 {
			continue
		}
		row := jsonRow{
			Suite:  r.Suite,
			Case:   r.Case,
			System: r.System,
			Value:  math.Round(r.Median()*1000) / 1000,
			Unit:   r.Unit,
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

// writeTable writes one suite's results as an aligned table followed by
// the notes of its rows.
func writeTable(w io.Writer, s *Suite, results []*Result, duration time.Duration, count int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "suite %s: %s\n", s.Name, s.Doc)
	fmt.Fprintf(&b, "%s %s/%s, %d CPUs, GOMAXPROCS=%d; median of %d runs of %v per row\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), count, duration)
	if load, ok := loadAverage(); ok {
		fmt.Fprintf(&b, "load average at the end: %.2f", load)
		if load > float64(runtime.NumCPU())/2 {
			b.WriteString(" (other processes competed for the CPUs: expect noise)")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")

	ratioHead := s.Reference + "×"
	t := table{
		head:  []string{"case", "system", "median", "unit", "min – max", "noise", ratioHead},
		right: []bool{false, false, true, false, true, true, true},
	}
	refs := map[[2]string]*Result{} // (case, unit) -> reference result
	for _, r := range results {
		if r.System == s.Reference && r.Err == nil && r.Skipped == "" && len(r.Values) > 0 {
			refs[[2]string{r.Case, r.Unit}] = r
		}
	}
	prevCase := ""
	for _, r := range results {
		name := r.Case
		if name == prevCase {
			name = ""
		} else if prevCase != "" {
			t.rows = append(t.rows, nil) // blank line between cases
		}
		prevCase = r.Case
		if r.Skipped != "" {
			// A short row: the reason spans the remaining columns.
			t.rows = append(t.rows, []string{name, r.System, r.Skipped})
			continue
		}
		if r.Err != nil || len(r.Values) == 0 {
			t.rows = append(t.rows, []string{name, r.System, "FAILED", r.Unit, "", "", ""})
			continue
		}
		ratio := ""
		if ref := refs[[2]string{r.Case, r.Unit}]; ref == r {
			ratio = "ref"
		} else if ref != nil {
			ratio = formatRatio(r.Advantage(ref))
		}
		t.rows = append(t.rows, []string{
			name,
			r.System,
			formatValue(r.Median()),
			r.Unit,
			formatValue(r.Min()) + " – " + formatValue(r.Max()),
			fmt.Sprintf("%.1f%%", 100*r.Noise()),
			ratio,
		})
	}
	t.write(&b)

	fmt.Fprintf(&b, "\n%s: how many times better %s is than the row (throughput: %s/row; costs such as allocs or seconds: row/%s); above 1 favours %s.\n",
		ratioHead, s.Reference, s.Reference, s.Reference, s.Reference)
	b.WriteString("noise: (max-min)/median over the runs.\n")
	first := true
	for _, r := range results {
		if r.Note == "" {
			continue
		}
		if first {
			b.WriteString("notes:\n")
			first = false
		}
		fmt.Fprintf(&b, "  %s, %s: %s\n", r.Case, r.System, r.Note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// loadAverage returns the 1-minute load average where the system tells
// it (Linux).
func loadAverage() (float64, bool) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, false
	}
	load, err := strconv.ParseFloat(f[0], 64)
	return load, err == nil
}

// table is a minimal aligned text table; a nil row prints as a blank line.
// A row shorter than the head is aligned up to its last cell, which is
// written as is and does not widen its column.
type table struct {
	head  []string
	right []bool // right-align column i
	rows  [][]string
}

func (t *table) write(b *strings.Builder) {
	width := make([]int, len(t.head))
	for _, row := range append([][]string{t.head}, t.rows...) {
		if len(row) < len(t.head) {
			row = row[:max(0, len(row)-1)]
		}
		for i, cell := range row {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	line := func(row []string) {
		var l strings.Builder
		for i, cell := range row {
			if len(row) < len(t.head) && i == len(row)-1 {
				if i > 0 {
					l.WriteString("  ")
				}
				l.WriteString(cell)
				continue
			}
			pad := strings.Repeat(" ", width[i]-len([]rune(cell)))
			if i > 0 {
				l.WriteString("  ")
			}
			if t.right[i] {
				l.WriteString(pad + cell)
			} else {
				l.WriteString(cell + pad)
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	line(t.head)
	for _, row := range t.rows {
		if row == nil {
			b.WriteString("\n")
			continue
		}
		line(row)
	}
}

// formatValue prints v with about four significant digits and an SI
// suffix: 12.35M, 987.6k, 3.000, 0.000, 0.
func formatValue(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	suffix := ""
	for _, u := range []struct {
		scale float64
		name  string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(v) >= u.scale {
			v /= u.scale
			suffix = u.name
			break
		}
	}
	// At most three decimals: below 0.001 the digits are noise (a stray
	// allocation spread over millions of commits).
	digits := min(3, max(0, 3-int(math.Floor(math.Log10(math.Abs(v))))))
	return strconv.FormatFloat(v, 'f', digits, 64) + suffix
}

func formatRatio(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case math.IsInf(x, 1):
		return "∞"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}
