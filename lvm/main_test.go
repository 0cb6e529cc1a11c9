package lvm_test

import (
	"os"
	"testing"

	"github.com/tandem-ha/tandem/lvm/lvmtest"
)

func TestMain(m *testing.M) { os.Exit(lvmtest.Run(m)) }
