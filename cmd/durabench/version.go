package main

import (
	"fmt"
	"io"

	"github.com/durabench/durabench/harness/buildinfo"
)

func runVersion(args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlagSet("version", stderr), args); err != nil {
		return err
	}
	v := buildinfo.Read()
	fmt.Fprintf(stdout, "durabench %s\ngo %s\n%s %s\n%s %s\n", v.Durabench, v.Go, buildinfo.SDKModule, v.SDK, buildinfo.ServerModule, v.Server)
	return nil
}
