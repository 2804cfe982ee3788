package loadtest

import (
	"fmt"
	"strconv"
	"strings"
)

// fmtInt writes n with thousands separators: 300000 -> "300,000".
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtRate writes a rate in messages per second, rounded to an integer.
func fmtRate(v float64) string { return fmtInt(int64(v + 0.5)) }

// fmtMB writes bytes as megabytes (10^6, like the field report's figures).
func fmtMB(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// fmtKB writes bytes as kilobytes with one decimal.
func fmtKB(b float64) string { return fmt.Sprintf("%.1f KB", b/1e3) }

// fmtMs writes microseconds as milliseconds with sensible precision.
func fmtMs(us int64) string {
	switch ms := float64(us) / 1000; {
	case ms < 10:
		return fmt.Sprintf("%.2f", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f", ms)
	default:
		return fmt.Sprintf("%.0f", ms)
	}
}

// fmtCores writes a CPU figure as cores and as a share of the machine.
func fmtCores(c float64, machine int) string {
	return fmt.Sprintf("%.2f cores (%.0f%% of %d)", c, 100*c/float64(max(machine, 1)), machine)
}

// fmtPct writes a core count as top does: 100% = one core.
func fmtPct(c float64) string { return fmt.Sprintf("%.0f%%", 100*c) }

// fmtRatio writes a/b as "2.31x"; "—" when undefined.
func fmtRatio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// sizeWord names a message size: "1 KiB", "256 B".
func sizeWord(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
