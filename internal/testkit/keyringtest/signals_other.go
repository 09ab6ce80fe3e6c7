//go:build !unix

package keyringtest

import "errors"

// Stop is not supported on this platform.
func (d *Daemon) Stop() error { return errors.New("keyringtest: Stop needs unix signals") }

// Continue is not supported on this platform.
func (d *Daemon) Continue() error { return errors.New("keyringtest: Continue needs unix signals") }
