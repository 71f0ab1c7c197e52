//go:build race

package jenkinstest

const raceEnabled = true
