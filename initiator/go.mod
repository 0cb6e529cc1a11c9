module github.com/tandem-ha/tandem/initiator

go 1.26.8

require (
	github.com/dell/goiscsi v1.9.0
	github.com/spf13/cobra v1.10.2
	github.com/stretchr/testify v1.12.1
	github.com/tandem-ha/tandem/internal v0.0.0
	github.com/tandem-ha/tandem/target v0.0.0
	github.com/tandem-ha/tandem/wire v0.0.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.10 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

replace (
	github.com/tandem-ha/tandem/internal => ../internal
	github.com/tandem-ha/tandem/target => ../target
	github.com/tandem-ha/tandem/wire => ../wire
)
