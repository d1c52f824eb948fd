// Package initscript holds the test that exercises the Buildroot init script
// buildroot/package/satd/S90satd for real: a BusyBox root filesystem in a
// temporary directory, a static satd, and BusyBox start-stop-daemon, driven
// through start, status, reload (SIGHUP), respawn after kill -9, and stop.
// It has no non-test code.
package initscript
