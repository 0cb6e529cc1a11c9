module github.com/tandem-ha/tandem/e2e

go 1.26.8
