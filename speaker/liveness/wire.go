package liveness

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Message types.
const (
	typeBeat     byte = 1
	typeFacts    byte = 2
	typeLeave    byte = 3
	typeLeaveAck byte = 4
)

var magic = [4]byte{'O', 'E', 'L', 1}

const (
	macSize = sha256.Size
	// maxPacket bounds a datagram (UDP payload limit with headroom).
	maxPacket = 65000
	// maxName is the longest node name (DNS subdomain).
	maxName = 253
)

// A message is one authenticated datagram.
type message struct {
	typ         byte
	sender      string
	recipient   string
	incarnation uint64 // sender's process start, unix ns
	timestamp   int64  // sender's clock at sending, unix ns; strictly increasing per sender
	payload     []byte
}

// beat is the payload of a heartbeat: the sender's facts digest and, for the
// recipient, what the sender knows of it.
type beat struct {
	factsDigest uint64 // digest of the sender's facts
	echoInc     uint64 // recipient's incarnation as the sender last heard it (0: never)
	echoDigest  uint64 // digest of the recipient's facts held by the sender (0: none)
	seesYou     bool   // the sender counts the recipient alive
}

var (
	errShort   = errors.New("short packet")
	errMagic   = errors.New("not an openelb liveness packet")
	errMAC     = errors.New("authentication failed")
	errTooLong = errors.New("packet too long")
)

func (m *message) marshal(key []byte) ([]byte, error) {
	if len(m.sender) == 0 || len(m.sender) > maxName || len(m.recipient) > maxName {
		return nil, fmt.Errorf("marshal liveness message: bad node name length")
	}
	size := 4 + 1 + 1 + len(m.sender) + 1 + len(m.recipient) + 8 + 8 + 4 + len(m.payload) + macSize
	if size > maxPacket {
		return nil, fmt.Errorf("marshal liveness message: %w (%d bytes)", errTooLong, size)
	}
	b := make([]byte, 0, size)
	b = append(b, magic[:]...)
	b = append(b, m.typ, byte(len(m.sender)))
	b = append(b, m.sender...)
	b = append(b, byte(len(m.recipient)))
	b = append(b, m.recipient...)
	b = binary.BigEndian.AppendUint64(b, m.incarnation)
	b = binary.BigEndian.AppendUint64(b, uint64(m.timestamp))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.payload)))
	b = append(b, m.payload...)
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return mac.Sum(b), nil
}

func unmarshal(b, key []byte) (*message, error) {
	if len(b) < 4+1+1+1+8+8+4+macSize {
		return nil, errShort
	}
	if [4]byte(b[:4]) != magic {
		return nil, errMagic
	}
	body, sum := b[:len(b)-macSize], b[len(b)-macSize:]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sum) {
		return nil, errMAC
	}
	m := &message{typ: body[4]}
	rest := body[5:]
	str := func() (string, bool) {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return "", false
		}
		s := string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
		return s, true
	}
	var ok bool
	if m.sender, ok = str(); !ok {
		return nil, errShort
	}
	if m.recipient, ok = str(); !ok {
		return nil, errShort
	}
	if len(rest) < 20 {
		return nil, errShort
	}
	m.incarnation = binary.BigEndian.Uint64(rest)
	m.timestamp = int64(binary.BigEndian.Uint64(rest[8:]))
	n := binary.BigEndian.Uint32(rest[16:])
	rest = rest[20:]
	if uint32(len(rest)) != n {
		return nil, errShort
	}
	m.payload = rest
	return m, nil
}

func (b beat) marshal() []byte {
	out := make([]byte, 0, 25)
	out = binary.BigEndian.AppendUint64(out, b.factsDigest)
	out = binary.BigEndian.AppendUint64(out, b.echoInc)
	out = binary.BigEndian.AppendUint64(out, b.echoDigest)
	var flags byte
	if b.seesYou {
		flags |= 1
	}
	return append(out, flags)
}

func parseBeat(p []byte) (beat, error) {
	if len(p) < 24 {
		return beat{}, errShort
	}
	return beat{
		factsDigest: binary.BigEndian.Uint64(p),
		echoInc:     binary.BigEndian.Uint64(p[8:]),
		echoDigest:  binary.BigEndian.Uint64(p[16:]),
		seesYou:     len(p) > 24 && p[24]&1 != 0,
	}, nil
}

// digest is the first 8 bytes of sha256(facts), never 0 (0 means "none").
func digest(facts []byte) uint64 {
	s := sha256.Sum256(facts)
	d := binary.BigEndian.Uint64(s[:8])
	if d == 0 {
		d = 1
	}
	return d
}
