package harness

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

func TestReproduce(t *testing.T) {
	tests := []struct {
		name     string
		env      Env
		test     string
		want     string
		matching []string // test names the -run pattern must select
	}{
		{
			name: "subtest", env: Env{PkgPath: "./scenarios/ex"}, test: "TestEX01/worker_sigkill",
			want:     `go test ./scenarios/ex -run '^TestEX01$/^worker_sigkill$' -count=1 -v`,
			matching: []string{"TestEX01", "worker_sigkill"},
		},
		{
			name: "external", env: Env{PkgPath: "./scenarios/ex", External: true, Options: client.Options{HostPort: "127.0.0.1:7233"}},
			test: "TestEX03", want: `TEMPORAL_ADDRESS=127.0.0.1:7233 go test ./scenarios/ex -run '^TestEX03$' -count=1 -v`,
		},
		{
			name: "regexp characters are quoted", env: Env{PkgPath: "./x"}, test: "TestA/b.c(1)",
			want: `go test ./x -run '^TestA$/^b\.c\(1\)$' -count=1 -v`, matching: []string{"TestA", "b.c(1)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.env.reproduce(tt.test)
			assert.Equal(t, tt.want, got)
			pattern := got[strings.Index(got, "'")+1 : strings.LastIndex(got, "'")]
			for i, part := range strings.Split(pattern, "/") {
				if i < len(tt.matching) {
					assert.Regexp(t, regexp.MustCompile(part), tt.matching[i])
				}
			}
		})
	}
}

func TestUniqueID(t *testing.T) {
	a, b := UniqueID(t, "wf"), UniqueID(t, "wf")
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^wf-TestUniqueID-[0-9a-f]{8}$`, a)
}

func TestWaitFor(t *testing.T) {
	n := 0
	require.NoError(t, WaitFor(context.Background(), time.Second, time.Millisecond, "three polls", func(context.Context) (bool, error) {
		n++
		return n == 3, nil
	}))
	err := WaitFor(context.Background(), 20*time.Millisecond, time.Millisecond, "never", func(context.Context) (bool, error) { return false, nil })
	require.ErrorContains(t, err, "waiting for never: gave up after 20ms")
	boom := errors.New("boom")
	err = WaitFor(context.Background(), time.Second, time.Millisecond, "x", func(context.Context) (bool, error) { return false, boom })
	require.ErrorIs(t, err, boom)
}
