//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach makes the agent its own session leader, so it outlives the
// `token` process that started it and gets no signal from its terminal.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
