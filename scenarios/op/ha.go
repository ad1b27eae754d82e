package op

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"go.temporal.io/sdk/client"
)

// clusterClientOptions reach every frontend of a cluster through one
// client: a gRPC manual resolver lists them and round robin spreads the
// calls, skipping a frontend whose connection is down.
func clusterClientOptions(frontends ...string) client.Options {
	r := manual.NewBuilderWithScheme("durabench-cluster")
	var addrs []resolver.Address
	for _, f := range frontends {
		addrs = append(addrs, resolver.Address{Addr: f})
	}
	r.InitialState(resolver.State{Addresses: addrs})
	return client.Options{
		HostPort:  "durabench-cluster:///frontends",
		Namespace: "default",
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{
			grpc.WithResolvers(r),
			grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		}},
	}
}
