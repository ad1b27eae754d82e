package ex

import (
	"fmt"
	"math/rand/v2"
	"time"

	"go.temporal.io/sdk/workflow"
)

// ValueSources feed the side-effect functions of ValuesWorkflow. A live
// worker gets real random values; a replay registers sources that return
// other values and count their calls, so a test can tell a recorded value
// from a recomputed one.
type ValueSources interface {
	Random() int64
	UUID() string
	Config(round int) int
}

// Values is ValuesWorkflow bound to its sources.
type Values struct {
	Sources ValueSources
}

// ValuesWorkflowName is the registered name of Values.Workflow.
const ValuesWorkflowName = "ValuesWorkflow"

// RandomValue is what one SideEffect call records.
type RandomValue struct {
	N    int64
	UUID string
}

// ValuesResult is everything ValuesWorkflow observed, round by round.
type ValuesResult struct {
	Nows    []time.Time
	Randoms []RandomValue
	Configs []int
}

// Workflow reads workflow.Now, a random number and a UUID through
// SideEffect, and a configuration value through MutableSideEffect, once per
// round, with an activity between rounds so that time advances.
func (v *Values) Workflow(ctx workflow.Context, rounds int) (ValuesResult, error) {
	var res ValuesResult
	for round := 0; round < rounds; round++ {
		res.Nows = append(res.Nows, workflow.Now(ctx))
		var r RandomValue
		if err := workflow.SideEffect(ctx, func(workflow.Context) any {
			return RandomValue{N: v.Sources.Random(), UUID: v.Sources.UUID()}
		}).Get(&r); err != nil {
			return res, err
		}
		res.Randoms = append(res.Randoms, r)
		var config int
		if err := workflow.MutableSideEffect(ctx, "config", func(workflow.Context) any { return v.Sources.Config(round) },
			func(a, b any) bool { return a.(int) == b.(int) }).Get(&config); err != nil {
			return res, err
		}
		res.Configs = append(res.Configs, config)
		if err := workflow.ExecuteActivity(shortActivities(ctx), TransformActivityName, round).Get(ctx, nil); err != nil {
			return res, err
		}
	}
	return res, nil
}

// CoroutinesWorkflow runs three workflow.Go coroutines that each send two
// messages, running a random (recorded) number of activities, from none to
// two, before each; even coroutines send on one channel, odd ones on
// another, and a selector interleaves them. It returns the order in which
// the messages arrived, which varies from run to run.
func CoroutinesWorkflow(ctx workflow.Context) ([]string, error) {
	const coroutines, sends = 3, 2
	ctx = shortActivities(ctx)
	var plan [coroutines][sends]int
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		var p [coroutines][sends]int
		for g := range p {
			for j := range p[g] {
				p[g][j] = rand.IntN(3)
			}
		}
		return p
	}).Get(&plan); err != nil {
		return nil, err
	}
	chans := [2]workflow.Channel{workflow.NewChannel(ctx), workflow.NewChannel(ctx)}
	for g := 0; g < coroutines; g++ {
		workflow.Go(ctx, func(ctx workflow.Context) {
			for j := 0; j < sends; j++ {
				total := 0
				for k := 0; k < plan[g][j]; k++ {
					var v int
					if err := workflow.ExecuteActivity(ctx, TransformActivityName, 10*g+j).Get(ctx, &v); err != nil {
						total = -1
						break
					}
					total += v
				}
				chans[g%2].Send(ctx, fmt.Sprintf("g%d.%d=%d", g, j, total))
			}
		})
	}
	var order []string
	sel := workflow.NewSelector(ctx)
	for _, ch := range chans {
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			var s string
			c.Receive(ctx, &s)
			order = append(order, s)
		})
	}
	for len(order) < coroutines*sends {
		sel.Select(ctx)
	}
	return order, nil
}
