package flood

import "net"

// SetMACs writes the Ethernet destination and source of frame in place.
// Frames from internal/packets carry placeholder addresses; a bridge only
// delivers a frame to the host whose address it names.
func SetMACs(frame []byte, dst, src net.HardwareAddr) {
	if len(frame) < 12 {
		return
	}
	copy(frame[0:6], dst)
	copy(frame[6:12], src)
}
