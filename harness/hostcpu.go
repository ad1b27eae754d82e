package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the machine's CPU time so far, in clock ticks, from the first
// line of /proc/stat: all of it, and the part a hypervisor ran other guests
// on (steal). On a shared host steal is what makes timings of one run
// incomparable with another's, so every check records it.
type cpuTimes struct{ total, steal uint64 }

// readCPUTimes reads /proc/stat; ok is false where there is none (not Linux).
func readCPUTimes() (cpuTimes, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	t, err := parseCPULine(line)
	return t, err == nil
}

// parseCPULine parses "cpu user nice system idle iowait irq softirq steal …".
// guest and guest_nice are already counted in user and nice.
func parseCPULine(line string) (cpuTimes, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: first line %q: want \"cpu\" and at least 8 counters", line)
	}
	var t cpuTimes
	for i, s := range f[1:9] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: counter %d: %w", i+1, err)
		}
		t.total += n
		if i == 7 {
			t.steal = n
		}
	}
	return t, nil
}

// stealPct is the share of CPU time stolen between a and b, in percent;
// ok is false when no time passed.
func stealPct(a, b cpuTimes) (float64, bool) {
	if b.total <= a.total || b.steal < a.steal {
		return 0, false
	}
	return 100 * float64(b.steal-a.steal) / float64(b.total-a.total), true
}
