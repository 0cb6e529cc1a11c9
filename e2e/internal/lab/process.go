package lab

import "github.com/tandem-ha/tandem/e2e/internal/proc"

// Process is a child process whose output goes to a log file: the labs'
// one process wrapper, e2e/internal/proc.
type Process = proc.Process

// StartProcess starts bin with args, stdout and stderr appended to logPath.
func StartProcess(bin string, args []string, logPath string) (*Process, error) {
	return proc.Start(bin, args, proc.Options{Log: logPath})
}
