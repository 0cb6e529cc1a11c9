package config

import (
	"reflect"
	"slices"
	"strings"
)

// Reload compares the file re-read on SIGHUP with the running config.
// Only log.level applies live: it changes no decision. Everything else
// waits for a restart: the timings must match the peer's (a node that
// declares the peer dead sooner than the peer declares it takes over
// first), links hold bound sockets, and a resource changed under a
// running group would need a stop and start, an outage the operator must
// choose (tandemctl standby, then restart). restart lists the changed
// keys, in config order; level is the file's log level.
func Reload(running, file *Config) (level string, restart []string) {
	rv, fv := reflect.ValueOf(*running), reflect.ValueOf(*file)
	t := rv.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("mapstructure")
		switch key {
		case "-":
			if f.Name != "Key" {
				continue // resolved from other fields (Peer, a link's addresses)
			}
			key = "key_file (its content)"
		case "log":
			if running.Log.Format != file.Log.Format {
				restart = append(restart, "log.format")
			}
			continue
		}
		if !reflect.DeepEqual(rv.Field(i).Interface(), fv.Field(i).Interface()) {
			restart = append(restart, key)
		}
	}
	return file.Log.Level, slices.Clip(restart)
}

// RestartAdvice is the log line's advice for keys Reload could not apply.
func RestartAdvice(keys []string) string {
	return "changed in the file, applied at the agent's next start: " + strings.Join(keys, ", ") +
		" (on the active node, tandemctl standby first: restarting it moves the group)"
}
