package testecm

import (
	"encoding/binary"
	"fmt"
)

// Systems are the ECM generators AppendFor knows, by scenario name.
var Systems = []string{"test", "conax", "seca", "fixed"}

// SecaProvider is the provider ident of generated Seca ECMs unless a
// scenario names another (the simulated Seca card's subscribed provider).
const SecaProvider = 0x0064

// secaKey is the key number byte of generated Seca ECMs.
const secaKey = 0x0C

// AppendFor appends the ECM of crypto period n for a service of the named
// system: "test" (Append, CWs derivable with Expected), "conax" (a section
// a Conax card accepts in its nano 14 wrapper) or "seca" (provider in
// bytes 3-4, key number in byte 7, never nano 01 in byte 8). The content
// is test data that changes with the period, service and PID.
func AppendFor(b []byte, system string, caid, sid, pid, provider uint16, n uint32) ([]byte, error) {
	switch system {
	case "", "test":
		return Append(b, caid, sid, pid, n), nil
	case "conax":
		return AppendConax(b, sid, pid, n), nil
	case "seca":
		return AppendSeca(b, provider, sid, pid, n), nil
	case "fixed":
		return AppendFixed(b, n), nil
	}
	return b, fmt.Errorf("ECM system %q: want one of %v", system, Systems)
}

// AppendFixed appends an ECM section that depends on the crypto period
// only: services sharing it send identical bytes (what a reader that
// answers by service, like constcw, must not confuse).
func AppendFixed(b []byte, n uint32) []byte {
	b = append(b, 0x80|byte(n&1), 0x70, 8)
	b = binary.BigEndian.AppendUint32(b, n)
	return append(b, 'F', 'I', 'X', 'D')
}

// AppendConax appends a Conax-shaped ECM section of crypto period n: table
// 0x80/0x81, then a nano 70 block carrying the service, PID and period
// (test data; the simulated card hashes the whole section).
func AppendConax(b []byte, sid, pid uint16, n uint32) []byte {
	const body = 16
	b = append(b, 0x80|byte(n&1), 0x70, body)
	b = append(b, 0x70, body-2)
	b = binary.BigEndian.AppendUint16(b, sid)
	b = binary.BigEndian.AppendUint16(b, pid)
	b = binary.BigEndian.AppendUint32(b, n)
	b = append(b, 'Z', 'P', 'C', 'X', 0, 0)
	return b
}

// AppendSeca appends a Seca 2 ECM section of crypto period n: provider
// ident in bytes 3-4, service in 5-6, key number in byte 7 and, from byte
// 8, a block that never starts with nano 01 or 10 01 (which would need a
// box key).
func AppendSeca(b []byte, provider, sid, pid uint16, n uint32) []byte {
	const body = 19
	b = append(b, 0x80|byte(n&1), 0x70, body)
	b = binary.BigEndian.AppendUint16(b, provider)
	b = binary.BigEndian.AppendUint16(b, sid)
	b = append(b, secaKey, 0xD1, body-7)
	b = binary.BigEndian.AppendUint16(b, pid)
	b = binary.BigEndian.AppendUint32(b, n)
	b = append(b, 'Z', 'P', 'S', 'C', 0, 0)
	return b
}
