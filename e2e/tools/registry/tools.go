//go:build tools

// Package tools pins github.com/distribution/distribution/v3/cmd/registry, built by ../build.sh.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
