//go:build unix && !linux

package hydra

import "syscall"

// setParentDeathSignal does nothing where Pdeathsig does not exist; the
// process group is still killed by the test's cleanup.
func setParentDeathSignal(*syscall.SysProcAttr) {}
