module github.com/sandlock-go/sandlock

go 1.26.0

require (
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/spf13/pflag v1.0.9
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)
