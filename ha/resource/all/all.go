// Package all registers every resource type of ha/resource: import it for
// its side effect in programs that call resource.Build.
package all

import (
	_ "github.com/tandem-ha/tandem/ha/fence"               // type fence
	_ "github.com/tandem-ha/tandem/ha/resource/filesystem" // type filesystem
	_ "github.com/tandem-ha/tandem/ha/resource/iscsi"      // type iscsi
	_ "github.com/tandem-ha/tandem/ha/resource/lsb"        // type lsb
	_ "github.com/tandem-ha/tandem/ha/resource/mq"         // type mq
	_ "github.com/tandem-ha/tandem/ha/resource/script"     // type script
	_ "github.com/tandem-ha/tandem/ha/resource/vip"        // type vip
)
