//go:build tools

// Package tools pins github.com/coredns/coredns, built by ../build.sh.
package tools

import _ "github.com/coredns/coredns"
