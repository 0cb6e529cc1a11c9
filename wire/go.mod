module github.com/tandem-ha/tandem/wire

go 1.26.8
