package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Reference writes the configuration reference as Markdown: every table and
// key with its default and description, generated from the same structs and
// default constructors that Load uses, so the documentation cannot drift.
func Reference(w io.Writer) error {
	cfg := reflect.ValueOf(Default()).Elem()
	t := cfg.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if err := writeField(w, "", f, cfg.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

// writeField writes the table of field f at path: a plain table, or an
// array of tables documented with its element defaults.
func writeField(w io.Writer, path string, f reflect.StructField, v reflect.Value) error {
	key := joinPrefix(path, tomlName(f))
	if f.Type.Kind() == reflect.Slice {
		return writeTable(w, key, "[["+key+"]]", f.Tag.Get("comment"), reflect.ValueOf(arrayDefaults[key]()).Elem())
	}
	return writeTable(w, key, "["+key+"]", f.Tag.Get("comment"), v)
}

func writeTable(w io.Writer, path, header, doc string, v reflect.Value) error {
	fmt.Fprintf(w, "### `%s`\n\n%s.\n\n| key | default | description |\n|---|---|---|\n", header, capitalize(doc))
	var nested []func() error
	walkFields(v, "", func(key string, f reflect.StructField, fv reflect.Value) {
		isArray := f.Type.Kind() == reflect.Slice && arrayDefaults[joinPrefix(path, key)] != nil
		if isTable(f.Type) || isArray {
			nested = append(nested, func() error { return writeField(w, path, f, fv) })
			return
		}
		fmt.Fprintf(w, "| `%s` | `%s` | %s |\n", key, defaultText(fv), escapeCell(f.Tag.Get("comment")))
	})
	fmt.Fprintln(w)
	for _, n := range nested {
		if err := n(); err != nil {
			return err
		}
	}
	return nil
}

// walkFields calls fn for every TOML key of the struct v, flattening embedded
// structs as the decoder does.
func walkFields(v reflect.Value, prefix string, fn func(key string, f reflect.StructField, fv reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("toml") == "-" {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("toml") == "" {
			walkFields(v.Field(i), prefix, fn)
			continue
		}
		fn(joinPrefix(prefix, tomlName(f)), f, v.Field(i))
	}
}

func defaultText(v reflect.Value) string {
	b, err := toml.Marshal(map[string]any{"k": v.Interface()})
	if err != nil {
		return "?"
	}
	s := strings.TrimSpace(strings.TrimPrefix(string(b), "k = "))
	if s == "" || strings.HasPrefix(s, "[k]") {
		return "{}"
	}
	return escapeCell(s)
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
