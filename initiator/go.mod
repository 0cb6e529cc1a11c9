module github.com/tandem-ha/tandem/initiator

go 1.26.8
