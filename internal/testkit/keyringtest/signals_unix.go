//go:build unix

package keyringtest

import "syscall"

// Stop freezes the keyring daemon with SIGSTOP, so calls to the Secret
// Service hang until Continue or Close.
func (d *Daemon) Stop() error {
	return d.keyring.Process.Signal(syscall.SIGSTOP)
}

// Continue resumes a daemon frozen by Stop.
func (d *Daemon) Continue() error {
	return d.keyring.Process.Signal(syscall.SIGCONT)
}
