module github.com/tandem-ha/tandem/mqres

go 1.26.8
