//go:build !race

package tools_test

const raceBuild = false
