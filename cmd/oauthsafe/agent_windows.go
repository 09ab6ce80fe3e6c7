package main

import (
	"os"
	"os/exec"
)

// On Windows there is no agent yet: `token` refreshes directly.

func ownedByMe(fi os.FileInfo) bool { return false }

func detach(cmd *exec.Cmd) {}

func tryLock(f *os.File) error { return errAgentUnsupported }
