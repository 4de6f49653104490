//go:build race

package main

// raceEnabled builds the broker binary with the race detector too.
const raceEnabled = true
