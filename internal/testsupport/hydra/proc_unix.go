//go:build unix

package hydra

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts Hydra in a process group of its own, so that stopping
// it reaches anything it starts, and (on Linux) has the kernel kill it if the
// test binary dies without running its cleanups.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// killGroup signals Hydra's process group: SIGKILL when force is set, SIGTERM
// otherwise.
func killGroup(cmd *exec.Cmd, force bool) error {
	if cmd.Process == nil {
		return nil
	}
	sig := syscall.SIGTERM
	if force {
		sig = syscall.SIGKILL
	}
	return syscall.Kill(-cmd.Process.Pid, sig)
}
