package lab

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// SMBNegotiate sends an SMB2 NEGOTIATE (dialects 2.0.2 to 3.0.2) on conn, a
// TCP connection to port 445, and reads the answer, as an SMB client does
// first: smbd drops connections that never negotiate, and a test that holds
// one open (to see it reset after a failover) needs smbd to keep it.
func SMBNegotiate(conn net.Conn) error {
	hdr := make([]byte, 64)
	copy(hdr, "\xfeSMB")
	binary.LittleEndian.PutUint16(hdr[4:], 64) // structure size
	binary.LittleEndian.PutUint16(hdr[14:], 1) // credits requested
	body := make([]byte, 36)
	binary.LittleEndian.PutUint16(body[0:], 36) // structure size
	dialects := []uint16{0x0202, 0x0210, 0x0300, 0x0302}
	binary.LittleEndian.PutUint16(body[2:], uint16(len(dialects)))
	binary.LittleEndian.PutUint16(body[4:], 1) // signing enabled
	copy(body[12:28], "storhaug-lab-001")      // client GUID
	for _, d := range dialects {
		body = binary.LittleEndian.AppendUint16(body, d)
	}
	msg := append(hdr, body...)
	frame := append([]byte{0, byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}, msg...)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(frame); err != nil {
		return err
	}
	var resp [8]byte
	if _, err := io.ReadFull(conn, resp[:]); err != nil {
		return err
	}
	if string(resp[4:8]) != "\xfeSMB" {
		return fmt.Errorf("answer is not SMB2: % x", resp)
	}
	n := int(resp[1])<<16 | int(resp[2])<<8 | int(resp[3])
	_, err := io.CopyN(io.Discard, conn, int64(n-4))
	return err
}
