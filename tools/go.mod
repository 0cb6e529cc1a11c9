module github.com/tandem-ha/tandem/tools

go 1.26.8

require (
	github.com/spf13/cobra v1.10.2
	github.com/stretchr/testify v1.12.1
	github.com/tandem-ha/tandem/ha v0.0.0
	github.com/tandem-ha/tandem/initiator v0.0.0
	github.com/tandem-ha/tandem/internal v0.0.0
	github.com/tandem-ha/tandem/lvm v0.0.0
	github.com/tandem-ha/tandem/mqres v0.0.0
	github.com/tandem-ha/tandem/target v0.0.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/cpuguy83/go-md2man/v2 v2.0.6 // indirect
	github.com/dell/goiscsi v1.9.0 // indirect
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/go-viper/mapstructure/v2 v2.4.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/pelletier/go-toml/v2 v2.2.4 // indirect
	github.com/prometheus/client_golang v1.23.2 // indirect
	github.com/prometheus/client_model v0.6.2 // indirect
	github.com/prometheus/common v0.66.1 // indirect
	github.com/prometheus/procfs v0.16.1 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/sagikazarmark/locafero v0.11.0 // indirect
	github.com/sourcegraph/conc v0.3.1-0.20240121214520-5f936abd7ae8 // indirect
	github.com/spf13/afero v1.15.0 // indirect
	github.com/spf13/cast v1.10.0 // indirect
	github.com/spf13/pflag v1.0.10 // indirect
	github.com/spf13/viper v1.21.0 // indirect
	github.com/subosito/gotenv v1.6.0 // indirect
	github.com/tandem-ha/tandem/wire v0.0.0 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/protobuf v1.36.8 // indirect
)

replace (
	github.com/tandem-ha/tandem/ha => ../ha
	github.com/tandem-ha/tandem/initiator => ../initiator
	github.com/tandem-ha/tandem/internal => ../internal
	github.com/tandem-ha/tandem/lvm => ../lvm
	github.com/tandem-ha/tandem/mqres => ../mqres
	github.com/tandem-ha/tandem/target => ../target
	github.com/tandem-ha/tandem/wire => ../wire
)
