package op

import (
	"testing"

	"github.com/durabench/durabench/harness"
)

func TestMain(m *testing.M) { harness.Main(m, "op", roles) }
