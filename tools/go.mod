module github.com/tandem-ha/tandem/tools

go 1.26.8
