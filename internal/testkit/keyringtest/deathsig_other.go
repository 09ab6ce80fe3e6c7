//go:build !linux

package keyringtest

import "os/exec"

func setDeathSignal(cmd *exec.Cmd) {}
