module github.com/tandem-ha/tandem/ha

go 1.26.8
