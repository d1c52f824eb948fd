// Package config is satd's configuration: one strict TOML file whose option
// names follow OSCam wherever OSCam has the same concept.
//
// Load reports every problem at once, each with its key and line: unknown
// keys, values of the wrong type, and whatever the sections' own validation
// finds. Defaults are compiled in (Default) and the README's reference is
// generated from the same structs (Reference), so the two cannot drift. Save
// is atomic.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/pelletier/go-toml/v2"

	"satd.dev/satd/balancer"
	"satd.dev/satd/internal/atomicfile"
	"satd.dev/satd/netstream"
)

// Config is the whole configuration of a satd instance.
type Config struct {
	Global   Global           `toml:"global" comment:"process-wide settings"`
	Log      Log              `toml:"log" comment:"logging"`
	Web      Web              `toml:"web" comment:"the device web form and its API"`
	Balancer balancer.Config  `toml:"balancer" comment:"the ECM load balancer (oscam.conf [global] lb_* options and timeouts)"`
	Stream   netstream.Config `toml:"stream" comment:"the LAN radio relay (Icecast option names where Icecast has them)"`
	DVBAPI   DVBAPI           `toml:"dvbapi" comment:"the receiver-facing dvbapi front door (oscam.conf [dvbapi])"`
	Update   Update           `toml:"update" comment:"over-the-air updates"`
	Boards   []Board          `toml:"board" comment:"slot wirings of receiver models, one [[board]] table each, named by readers' board key"`
	Readers  []Reader         `toml:"reader" comment:"card readers, one [[reader]] table each (oscam.server [reader])"`
}

// section is implemented by every table of the configuration.
type section interface {
	Validate(report func(key, msg string))
}

// Default returns the configuration in force when the file sets nothing.
func Default() *Config {
	return &Config{
		Global:   DefaultGlobal(),
		Log:      DefaultLog(),
		Web:      DefaultWeb(),
		Balancer: balancer.DefaultConfig(),
		Stream:   netstream.DefaultConfig(),
		DVBAPI:   DefaultDVBAPI(),
		Update:   DefaultUpdate(),
	}
}

// arrayDefaults gives the default element of every array of tables, applied
// to each element for the keys the file leaves out.
var arrayDefaults = map[string]func() any{
	"board":        func() any { return &Board{} },
	"reader":       func() any { r := DefaultReader(); return &r },
	"stream.mount": func() any { m := netstream.DefaultMount(); return &m },
}

// Load reads and validates the configuration file at path. The error is a
// Problems value when the file was read but is not valid.
func Load(path string) (*Config, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, doc)
}

// Parse decodes and validates doc; name is used in problem reports.
func Parse(name string, doc []byte) (*Config, error) {
	cfg := Default()
	lines := scanKeyLines(doc)
	rep := reporter{file: name, lines: lines, out: new(Problems)}
	dec := toml.NewDecoder(bytes.NewReader(doc)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		if !decodeProblems(err, rep) {
			return nil, *rep.out
		}
	}
	fillArrayDefaults(cfg, lines)
	cfg.validate(rep)
	if len(*rep.out) > 0 {
		rep.out.sort()
		return nil, *rep.out
	}
	return cfg, nil
}

// decodeProblems turns a decoder error into problems. It reports whether the
// decoded value is still complete enough to validate (true for unknown keys,
// which the decoder skips; false for syntax and type errors).
func decodeProblems(err error, rep reporter) bool {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		for _, e := range strict.Errors {
			line, _ := e.Position()
			key := rep.lines.keyAt(line, keyString(e.Key()))
			*rep.out = append(*rep.out, Problem{File: rep.file, Line: line, Key: key, Msg: "unknown key"})
		}
		return true
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		*rep.out = append(*rep.out, Problem{File: rep.file, Line: line, Key: keyString(de.Key()), Msg: de.Error()})
		return false
	}
	*rep.out = append(*rep.out, Problem{File: rep.file, Msg: err.Error()})
	return false
}

func keyString(k toml.Key) string {
	s := ""
	for _, p := range k {
		s = joinPrefix(s, p)
	}
	return s
}

func (c *Config) validate(rep reporter) {
	c.Global.Validate(rep.section("global"))
	c.Log.Validate(rep.section("log"))
	c.Web.Validate(rep.section("web"))
	c.Balancer.Validate(rep.section("balancer"))
	c.Stream.Validate(rep.section("stream"))
	c.DVBAPI.Validate(rep.section("dvbapi"))
	c.Update.Validate(rep.section("update"))
	c.validateBoards(rep)
	c.validateListens(rep)
	labels := map[string]int{}
	for i := range c.Readers {
		prefix := fmt.Sprintf("reader[%d]", i)
		c.Readers[i].Validate(rep.section(prefix))
		if j, dup := labels[c.Readers[i].Label]; dup {
			rep.section(prefix)("label", fmt.Sprintf("%q is already the label of reader[%d]", c.Readers[i].Label, j))
		}
		labels[c.Readers[i].Label] = i
	}
}

// Validate checks an in-memory configuration (one edited through the web
// form, say) with the same rules as Load. Problems carry no line numbers.
func (c *Config) Validate() error {
	rep := reporter{file: "config", lines: keyLines{}, out: new(Problems)}
	c.validate(rep)
	if len(*rep.out) > 0 {
		return *rep.out
	}
	return nil
}

// Encode writes the configuration as TOML.
func (c *Config) Encode(w io.Writer) error {
	enc := toml.NewEncoder(w)
	enc.SetIndentTables(true)
	// The balancer's list types write themselves as OSCam-style strings
	// (MarshalTOML), not as arrays of tables.
	enc.EnableMarshalerInterface()
	return enc.Encode(c)
}

// Save atomically replaces the file at path with c: a crash or power cut at
// any point leaves either the complete old file or the complete new one.
// The comments of the file it replaces are kept (keepComments).
func Save(path string, c *Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	var b bytes.Buffer
	if err := c.Encode(&b); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	out := b.Bytes()
	if old, err := os.ReadFile(path); err == nil {
		out = keepComments(old, out)
	}
	return atomicfile.WriteFile(path, out, 0o600)
}

// fillArrayDefaults applies each array element's defaults to the keys the
// file does not set. (The decoder keeps defaults of plain tables itself, but
// creates array elements from zero values.)
func fillArrayDefaults(cfg *Config, lines keyLines) {
	walkArrays(reflect.ValueOf(cfg).Elem(), "", "", lines)
}

// walkArrays finds the arrays of tables below v; plain is the path without
// indexes (the arrayDefaults key), path the one with them (the keyLines key).
func walkArrays(v reflect.Value, plain, path string, lines keyLines) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("toml") == "-" || f.Anonymous {
			continue
		}
		name := tomlName(f)
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.Slice && arrayDefaults[joinPrefix(plain, name)] != nil:
			mk := arrayDefaults[joinPrefix(plain, name)]
			for j := 0; j < fv.Len(); j++ {
				def := reflect.ValueOf(mk()).Elem()
				fillDefaults(fv.Index(j), def, fmt.Sprintf("%s[%d]", joinPrefix(path, name), j), lines)
			}
		case isTable(f.Type):
			walkArrays(fv, joinPrefix(plain, name), joinPrefix(path, name), lines)
		}
	}
}

func fillDefaults(dst, def reflect.Value, path string, lines keyLines) {
	t := dst.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("toml") == "-" {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("toml") == "" {
			fillDefaults(dst.Field(i), def.Field(i), path, lines)
			continue
		}
		key := joinPrefix(path, tomlName(f))
		switch {
		case isTable(f.Type) && lines.has(key):
			fillDefaults(dst.Field(i), def.Field(i), key, lines)
		case !lines.has(key):
			dst.Field(i).Set(def.Field(i))
		}
	}
}

// isTable reports whether a field of type t is a nested TOML table rather
// than a value (structs that decode from text are values).
func isTable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	_, text := reflect.New(t).Interface().(interface{ UnmarshalText([]byte) error })
	return !text
}

func tomlName(f reflect.StructField) string {
	tag := f.Tag.Get("toml")
	for i := 0; i < len(tag); i++ {
		if tag[i] == ',' {
			tag = tag[:i]
			break
		}
	}
	if tag == "" {
		return f.Name
	}
	return tag
}
