package lbsim

import (
	"bytes"
	"fmt"
	"os"

	"github.com/pelletier/go-toml/v2"

	"satd.dev/satd/balancer"
)

// fileReader is a [[reader]] table as lbsim reads it: the label, whether
// the card is physical, and the balancer's per-reader options. Other keys
// of the satd configuration are ignored.
type fileReader struct {
	Label    string `toml:"label"`
	Local    *bool  `toml:"local"`
	Protocol string `toml:"protocol"`
	balancer.ReaderConfig
}

type file struct {
	Balancer balancer.Config `toml:"balancer"`
	Readers  []fileReader    `toml:"reader"`
}

// LoadConfig reads the [balancer] section and the [[reader]] tables of a
// satd TOML configuration. A reader without "local" is local when its
// protocol is a physical slot (internal, mouse).
func LoadConfig(path string) (Config, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(doc, path)
}

// ParseConfig is LoadConfig on bytes; name is used in errors.
func ParseConfig(doc []byte, name string) (Config, error) {
	f := file{Balancer: balancer.DefaultConfig()}
	if err := toml.NewDecoder(bytes.NewReader(doc)).Decode(&f); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	cfg := Config{Balancer: f.Balancer}
	for i, r := range f.Readers {
		if r.Label == "" {
			return Config{}, fmt.Errorf("%s: reader[%d]: label is missing", name, i)
		}
		local := r.Protocol == "internal" || r.Protocol == "mouse"
		if r.Local != nil {
			local = *r.Local
		}
		if r.LBWeight == 0 {
			r.LBWeight = balancer.DefaultReaderConfig().LBWeight // absent key; OSCam maps 0 to 100 as well
		}
		cfg.Readers = append(cfg.Readers, ReaderConfig{Label: r.Label, Local: local, Options: r.ReaderConfig})
	}
	if len(cfg.Readers) == 0 {
		return Config{}, fmt.Errorf("%s: no [[reader]] tables", name)
	}
	return cfg, nil
}
