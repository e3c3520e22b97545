package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A record is RecordSize bytes: magic, sequence number, the time the writer
// made it, a payload derived from the sequence number (so that a record
// written in the wrong place or half-written is caught), and a CRC-32C of
// all that.
//
//	0  magic   "SHWL"
//	4  seq     uint64 big endian
//	12 made    int64, Unix ns
//	20 payload 40 bytes, payloadByte(seq, i)
//	60 crc32c  of bytes 0..59
const (
	RecordSize = 64
	magic      = "SHWL"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func payloadByte(seq uint64, i int) byte { return byte(seq*131 + uint64(i)*7 + 1) }

// Encode makes the record for seq.
func Encode(seq uint64, made int64) []byte {
	b := make([]byte, RecordSize)
	copy(b, magic)
	binary.BigEndian.PutUint64(b[4:], seq)
	binary.BigEndian.PutUint64(b[12:], uint64(made))
	for i := 0; i < 40; i++ {
		b[20+i] = payloadByte(seq, i)
	}
	binary.BigEndian.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
	return b
}

// Errors of Decode: ErrLost for a record that is not there (short read or
// all zeros, as a hole reads), ErrCorrupt for one that is there but wrong.
var (
	ErrLost    = errors.New("lost")
	ErrCorrupt = errors.New("corrupt")
)

// Decode checks that b holds the intact record for seq.
func Decode(b []byte, seq uint64) error {
	if len(b) < RecordSize {
		return fmt.Errorf("%w: %d of %d bytes", ErrLost, len(b), RecordSize)
	}
	b = b[:RecordSize]
	zero := true
	for _, c := range b {
		if c != 0 {
			zero = false
			break
		}
	}
	if zero {
		return fmt.Errorf("%w: zeros", ErrLost)
	}
	if string(b[:4]) != magic {
		return fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:4])
	}
	if got, want := binary.BigEndian.Uint32(b[60:]), crc32.Checksum(b[:60], castagnoli); got != want {
		return fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	if got := binary.BigEndian.Uint64(b[4:]); got != seq {
		return fmt.Errorf("%w: sequence %d, want %d", ErrCorrupt, got, seq)
	}
	for i := 0; i < 40; i++ {
		if b[20+i] != payloadByte(seq, i) {
			return fmt.Errorf("%w: payload byte %d", ErrCorrupt, i)
		}
	}
	return nil
}
