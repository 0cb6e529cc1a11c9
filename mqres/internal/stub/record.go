package stub

import (
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

type logRecord struct {
	op, queue string
	data      []byte
}

// encodeRecord is one log line: op queue base64 crc32c, the CRC covering
// the first three fields so that a torn or corrupt line ends replay.
func encodeRecord(op, queue string, data []byte) string {
	body := op + " " + queue + " " + base64.StdEncoding.EncodeToString(data)
	return fmt.Sprintf("%s %08x\n", body, crc32.Checksum([]byte(body), crc32.MakeTable(crc32.Castagnoli)))
}

func decodeRecord(line string) (logRecord, bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return logRecord{}, false
	}
	body := line[:i]
	sum, err := strconv.ParseUint(line[i+1:], 16, 32)
	if err != nil || uint32(sum) != crc32.Checksum([]byte(body), crc32.MakeTable(crc32.Castagnoli)) {
		return logRecord{}, false
	}
	f := strings.Split(body, " ")
	if len(f) != 3 || (f[0] != "P" && f[0] != "G") || f[1] == "" {
		return logRecord{}, false
	}
	data, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		return logRecord{}, false
	}
	return logRecord{op: f[0], queue: f[1], data: data}, true
}
