package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"satd.dev/satd/cmd/satd/channels"
	"satd.dev/satd/cmd/satd/config"
	"satd.dev/satd/cmd/satd/oscamimport"
	"satd.dev/satd/internal/atomicfile"
)

func init() {
	register("import-oscam", "convert oscam.conf, oscam.server and oscam.user into a satd configuration, reporting what was mapped and what was ignored; oscam.srvid, oscam.srvid2 and lamedb become its channel names", runImportOSCam)
}

func runImportOSCam(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import-oscam", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory holding oscam.conf, oscam.server and oscam.user (each optional)")
	conf := fs.String("conf", "", "oscam.conf (overrides -dir)")
	server := fs.String("server", "", "oscam.server (overrides -dir)")
	user := fs.String("user", "", "oscam.user (overrides -dir)")
	srvid := fs.String("srvid", "", "oscam.srvid with channel names (overrides -dir)")
	srvid2 := fs.String("srvid2", "", "oscam.srvid2 with channel names (overrides -dir)")
	lamedb := fs.String("lamedb", "", "enigma2 lamedb with channel names (overrides -dir)")
	names := fs.String("names", "", "write the channel names here (default with -o: <state_dir>/"+channels.File+")")
	out := fs.String("o", "", "write the satd configuration to this file (atomically) instead of stdout")
	quiet := fs.Bool("q", false, "do not print the report")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var in oscamimport.Files
	var nf channels.Files
	for _, f := range []struct {
		flag *string
		name string
		dst  *[]byte
	}{{conf, "oscam.conf", &in.Conf}, {server, "oscam.server", &in.Server}, {user, "oscam.user", &in.User},
		{srvid, "oscam.srvid", &nf.Srvid}, {srvid2, "oscam.srvid2", &nf.Srvid2}, {lamedb, "lamedb", &nf.Lamedb}} {
		path := *f.flag
		if path == "" && *dir != "" {
			path = filepath.Join(*dir, f.name)
			if _, err := os.Stat(path); err != nil {
				continue // optional in a directory
			}
		}
		if path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "import-oscam: %v\n", err)
			return 1
		}
		*f.dst = b
	}
	res, err := oscamimport.Convert(in, config.Default())
	if err != nil {
		fmt.Fprintf(stderr, "import-oscam: %v\n", err)
		return 1
	}
	if !*quiet {
		writeImportReport(stderr, res.Report)
	}
	var b bytes.Buffer
	fmt.Fprintln(&b, "# satd configuration converted from OSCam by `satd import-oscam`.")
	if err := res.Config.Encode(&b); err != nil {
		fmt.Fprintf(stderr, "import-oscam: %v\n", err)
		return 1
	}
	if *out == "" {
		stdout.Write(b.Bytes())
	} else if err := atomicfile.WriteFile(*out, b.Bytes(), 0o600); err != nil {
		fmt.Fprintf(stderr, "import-oscam: %v\n", err)
		return 1
	}
	if err := importNames(nf, *names, *out, res.Config, stderr); err != nil {
		fmt.Fprintf(stderr, "import-oscam: %v\n", err)
		return 1
	}
	return 0
}

// importNames carries the channel names over: to path, or with a
// configuration file written, to the state directory satd reads them from.
func importNames(nf channels.Files, path, out string, cfg *config.Config, stderr io.Writer) error {
	if nf.Empty() {
		return nil
	}
	t, probs, err := channels.Import(nf)
	for _, p := range probs {
		fmt.Fprintf(stderr, "note: %s: line skipped\n", p)
	}
	if err != nil {
		return err
	}
	if path == "" && out != "" {
		path = filepath.Join(cfg.Global.StateDir, channels.File)
	}
	if path == "" {
		fmt.Fprintf(stderr, "channel names: %d read, not written (give -names FILE, or -o)\n", t.Len())
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := channels.Save(path, t); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "channel names: %d written to %s\n", t.Len(), path)
	return nil
}

func writeImportReport(w io.Writer, r oscamimport.Report) {
	fmt.Fprintf(w, "mapped (%d):\n", len(r.Mapped))
	for _, it := range r.Mapped {
		fmt.Fprintf(w, "  %s:%d %s = %s -> %s", it.File, it.Line, it.Key, it.Value, it.To)
		if it.Reason != "" {
			fmt.Fprintf(w, " (%s)", it.Reason)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "ignored (%d):\n", len(r.Ignored))
	for _, it := range r.Ignored {
		fmt.Fprintf(w, "  %s:%d %s = %s: %s\n", it.File, it.Line, it.Key, it.Value, it.Reason)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
