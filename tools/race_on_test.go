//go:build race

package tools_test

// The broker binary is built with the race detector when the tests are.
const raceBuild = true
