//go:build tools

// Package tools pins the Pulumi CLI as a dependency of this module, so `go build` of
// github.com/pulumi/pulumi/pkg/v3/cmd/pulumi uses exactly the versions in go.mod and go.sum.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
