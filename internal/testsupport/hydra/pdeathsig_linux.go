package hydra

import "syscall"

// setParentDeathSignal makes the kernel SIGKILL Hydra when the thread that
// started it exits, e.g. when `go test` kills a test binary on timeout.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
