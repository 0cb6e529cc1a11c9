package iscsi_test

import (
	"os"
	"testing"

	"github.com/tandem-ha/tandem/initiator/iscsiadm/iscsiadmtest"
)

func TestMain(m *testing.M) { os.Exit(iscsiadmtest.Run(m)) }
