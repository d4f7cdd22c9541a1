#!/usr/bin/python3
"""Plays a qemu guest: opens an existing tap (as qemu does, IFF_TAP|IFF_NO_PI) and writes
COUNT UDP frames of SIZE bytes as fast as it can, as the guest would send them.
Usage: tapsend.py TAP SRC_MAC DST_MAC SRC_IP DST_IP COUNT SIZE"""
import fcntl, os, socket, struct, sys

tap, smac, dmac, sip, dip, count, size = sys.argv[1:8]
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tap.encode(), IFF_TAP | IFF_NO_PI))

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF

payload = b"x" * (int(size) - 42)
udp = struct.pack("!HHHH", 40000, 9, 8 + len(payload), 0) + payload
hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                  socket.inet_aton(sip), socket.inet_aton(dip))
hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
eth = bytes.fromhex(dmac.replace(":", "")) + bytes.fromhex(smac.replace(":", "")) + b"\x08\x00"
frame = eth + hdr + udp
for _ in range(int(count)):
    os.write(fd, frame)
