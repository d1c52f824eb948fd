// Package testguard holds repository-wide checks on the tests themselves.
//
// It has no code of its own: its test walks every *_test.go file of the
// module and fails when a test measures wall-clock time for anything but a
// reported figure, so that assertions on elapsed time, which fail on a loaded
// machine, cannot creep back (issue 16, Done-when 3).
package testguard
