// Command satd is the receiver daemon: it drives the card slots, balances
// ECMs across the readers, serves the receiver's descrambler over the dvbapi
// protocol, relays a radio stream to the LAN and serves the device web form.
//
// Usage:
//
//	satd [-config PATH] [-check] [-demo] [-version]
//	satd COMMAND [ARGS...]
//
// Run `satd help` for the list of commands.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// version is stamped by the linker: -ldflags "-X main.version=...".
var version = "dev"

// defaultConfigPath is where the daemon looks for its configuration when
// neither -config nor -demo is given.
const defaultConfigPath = "/etc/satd/satd.toml"

// command is a subcommand: `satd NAME ARGS...`.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands holds the subcommands; each registers itself from its own file.
var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	if _, dup := commands[name]; dup {
		panic("satd: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		if args[0] == "help" {
			usage(stdout)
			return 0
		}
		cmd, ok := commands[args[0]]
		if !ok {
			fmt.Fprintf(stderr, "satd: unknown command %q\n", args[0])
			usage(stderr)
			return 2
		}
		return cmd.run(args[1:], stdout, stderr)
	}
	return runDaemon(args, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: satd [-config PATH] [-check] [-demo] [-version]")
	fmt.Fprintln(w, "       satd COMMAND [ARGS...]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-16s %s\n", name, commands[name].summary)
	}
}

// daemonFlags are the flags of the daemon itself.
type daemonFlags struct {
	config  string
	check   bool
	demo    bool
	version bool
}

func parseDaemonFlags(args []string, stderr io.Writer) (daemonFlags, error) {
	var f daemonFlags
	fs := flag.NewFlagSet("satd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file (default "+defaultConfigPath+", or the embedded demo with -demo)")
	fs.BoolVar(&f.check, "check", false, "validate the configuration, print every problem, and exit (status 2 if invalid)")
	fs.BoolVar(&f.demo, "demo", false, "run on the embedded demo configuration: simulated slots, demo stream, web form on 127.0.0.1:8080")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.Usage = func() { usage(stderr); fmt.Fprintln(stderr, "\nflags:"); fs.PrintDefaults() }
	return f, fs.Parse(args)
}
