module satd.dev/satd

go 1.25.0

require (
	aead.dev/minisign v0.3.0
	github.com/chromedp/chromedp v0.22.1
	github.com/pelletier/go-toml/v2 v2.4.3
	golang.org/x/crypto v0.55.0
	golang.org/x/sys v0.47.0
	periph.io/x/conn/v3 v3.7.2
	periph.io/x/host/v3 v3.8.5
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
)
