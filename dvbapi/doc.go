// Package dvbapi is satd's receiver-facing front door: the softcam ("dvbapi")
// protocol that OSCam made the de-facto standard and that enigma2,
// tvheadend, VDR and minisatip speak.
//
// The package has four layers:
//
//   - wire.go: byte layouts of every message in both directions (encoders
//     append to a caller's buffer, decoders never allocate);
//   - framing.go: reassembly of client→server messages from a byte stream
//     for protocol versions 1, 2 and 3 (the A5 msgid prefix);
//   - capmt.go: the EN 50221 ca_pmt parser with the hosts' private
//     descriptors 0x81-0x87;
//   - conn.go, programme.go: list management and the per-programme state
//     machine that turns ECM sections into descrambler commands through an
//     ECMSolver (the balancer's dispatcher in the daemon);
//
// and the transports in server.go (TCP with an allow-list, Unix socket,
// enigma2 listen-socket client mode) and device.go (local-device mode, which
// programs /dev/dvb/adapterN/{demuxM,caM} instead of answering on the socket).
//
// The contract is ../shared/specs/dvbapi.md sections 0, 1, 2 and 5.
package dvbapi
