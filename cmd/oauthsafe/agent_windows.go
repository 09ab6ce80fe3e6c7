package main

import "os/exec"

// On Windows there is no agent yet (agentDir refuses): `token` refreshes
// directly.

func detach(cmd *exec.Cmd) {}
