// Package atomicfile writes files so that a reader, or the next boot after a
// power cut, sees either the complete old content or the complete new one.
//
// Receivers lose power without warning and keep their configuration on flash,
// so the sequence is the full one: temporary file in the same directory,
// write, fsync, rename over the target, fsync of the directory (without the
// last step a rename can be lost on power failure on some file systems).
package atomicfile

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// WriteFile atomically replaces path with data, giving the file mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write atomically replaces path with what fill writes, giving the file mode
// perm. If fill or any step fails, path is left untouched and the temporary
// file is removed.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: chmod %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename to %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir makes a rename, link or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: fsync directory %s: %w", dir, err)
	}
	return nil
}

// CleanTemps removes the temporary files a write to path left behind when
// the process was killed before its rename (".NAME.tmp-*" beside path), and
// returns how many it removed. Call it at start, before anything writes path.
func CleanTemps(path string) (int, error) {
	dir, base := filepath.Split(path)
	return removeGlob(filepath.Join(cmp.Or(dir, "."), "."+globEscape(base)+".tmp-*"))
}

// CleanDirTemps is CleanTemps for every file of dir.
func CleanDirTemps(dir string) (int, error) {
	return removeGlob(filepath.Join(globEscape(dir), ".*.tmp-*"))
}

func removeGlob(pattern string) (int, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !os.IsNotExist(err) {
			return n, fmt.Errorf("atomicfile: remove %s: %w", m, err)
		}
		n++
	}
	return n, nil
}

func globEscape(s string) string {
	return strings.NewReplacer("*", `\*`, "?", `\?`, "[", `\[`, `\`, `\\`).Replace(s)
}
