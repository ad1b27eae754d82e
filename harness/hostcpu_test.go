package harness

import "testing"

func TestParseCPULine(t *testing.T) {
	tests := []struct {
		line      string
		want      cpuTimes
		wantError bool
	}{
		{"cpu  100 0 50 800 10 0 5 35 0 0", cpuTimes{total: 1000, steal: 35}, false},
		{"cpu 1 2 3 4 5 6 7 8", cpuTimes{total: 36, steal: 8}, false},
		{"cpu 1 2 3 4 5 6 7", cpuTimes{}, true},    // no steal counter
		{"cpu0 1 2 3 4 5 6 7 8", cpuTimes{}, true}, // a per-CPU line
		{"cpu 1 2 3 x 5 6 7 8", cpuTimes{}, true},  // not a number
		{"", cpuTimes{}, true},
	}
	for _, tt := range tests {
		got, err := parseCPULine(tt.line)
		if (err != nil) != tt.wantError || got != tt.want {
			t.Errorf("parseCPULine(%q) = %+v, %v; want %+v, error %v", tt.line, got, err, tt.want, tt.wantError)
		}
	}
}

func TestStealPct(t *testing.T) {
	tests := []struct {
		a, b   cpuTimes
		want   float64
		wantOK bool
	}{
		{cpuTimes{1000, 10}, cpuTimes{2000, 260}, 25, true},
		{cpuTimes{1000, 10}, cpuTimes{2000, 10}, 0, true},
		{cpuTimes{1000, 10}, cpuTimes{1000, 10}, 0, false}, // no time passed
		{cpuTimes{1000, 10}, cpuTimes{900, 5}, 0, false},   // counters went back
	}
	for _, tt := range tests {
		got, ok := stealPct(tt.a, tt.b)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("stealPct(%+v, %+v) = %v, %v; want %v, %v", tt.a, tt.b, got, ok, tt.want, tt.wantOK)
		}
	}
}
