module github.com/tandem-ha/tandem/target

go 1.26.8
