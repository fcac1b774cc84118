#!/usr/bin/env python3
"""QEMU-profile streams with a RAM section, for the extract tests.

    ramstream.py OUT NAME:LEN[:BYTE] ...   blocks, each with one page of BYTE
    ramstream.py --collide OUT             two 255-byte names, one CRC-32

A block with BYTE gets one 4 KiB page of that byte at offset 0; without
it, no page.  --collide writes two blocks whose names share their first
249 bytes and have the same CRC-32 (found by a birthday search over a
6-byte suffix: a 4-byte one cannot collide), then prints the two names in hex.
"""
import random
import struct
import sys
import zlib


def cstr(s):
    return bytes([len(s)]) + s


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def stream(blocks):
    """blocks: (name bytes, length, page byte or None)."""
    total = sum(b[1] for b in blocks)
    d = b"QEVM" + be32(3) + b"\x07" + be32(4) + b"test"
    d += b"\x01" + be32(1) + cstr(b"ram") + be32(0) + be32(4)
    d += be64(total | 4) + b"".join(cstr(n) + be64(ln) for n, ln, _ in blocks)
    d += be64(0x10) + b"\x7e" + be32(1)
    d += b"\x03" + be32(1)
    for n, _, byte in blocks:
        if byte is not None:
            d += be64(0x08) + cstr(n) + bytes([byte]) * 4096
    d += be64(0x10) + b"\x7e" + be32(1) + b"\x00"
    j = b'{"page_size": 4096, "devices": []}'
    d += b"\x06" + be32(len(j)) + j
    return d


def collide():
    """Two distinct 255-byte names with one CRC-32."""
    rnd = random.Random(1)
    prefix = b"c" * 249
    alpha = b"abcdefghijklmnopqrstuvwxyz0123456789"
    seen = {}
    while True:
        suf = bytes(rnd.choice(alpha) for _ in range(6))
        name = prefix + suf
        c = zlib.crc32(name)
        if c in seen and seen[c] != name:
            return seen[c], name
        seen[c] = name


def main():
    if sys.argv[1] == "--collide":
        a, b = collide()
        open(sys.argv[2], "wb").write(
            stream([(a, 0x1000, 0x41), (b, 0x1000, 0x42)]))
        print(a.hex(), b.hex())
        return
    blocks = []
    for arg in sys.argv[2:]:
        parts = arg.split(":")
        name = parts[0].encode("latin-1").decode("unicode_escape").encode(
            "latin-1")
        byte = int(parts[2], 0) if len(parts) > 2 else None
        blocks.append((name, int(parts[1], 0), byte))
    open(sys.argv[1], "wb").write(stream(blocks))


main()
