package tools

import "time"

// SetSearchTimeout shortens how long search_build_log scans, for tests
// that must not run in parallel with other searches. It returns a func
// that restores the previous value.
func SetSearchTimeout(d time.Duration) (restore func()) {
	old := searchTimeout
	searchTimeout = d
	return func() { searchTimeout = old }
}

// SetDiagnoseTimeout shortens diagnose_build's time bound, for tests that
// do not run in parallel. It returns a func that restores it.
func SetDiagnoseTimeout(d time.Duration) (restore func()) {
	old := diagnoseTimeout
	diagnoseTimeout = d
	return func() { diagnoseTimeout = old }
}
