module github.com/tandem-ha/tandem/lvm

go 1.26.8
