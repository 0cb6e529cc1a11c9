module github.com/tandem-ha/tandem/mqres

go 1.26.8

require (
	github.com/stretchr/testify v1.12.1
	github.com/tandem-ha/tandem/internal v0.0.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect

replace github.com/tandem-ha/tandem/internal => ../internal
