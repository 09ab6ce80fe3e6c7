package keyringtest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the daemon if the test process dies
// without running its cleanups.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
