#!/usr/bin/env python3
"""Native-profile streams (docs/FORMAT.md, section 2), for the convert tests.

    nativestream.py OUT phantom     a FULL whose payload holds a footer and
                                    the head of a FULL of another section
    nativestream.py OUT phantom3    the same, and a footer and the head
                                    of a FULL of the first section again:
                                    one FULL that QEMU's grammar reads as
                                    three
    nativestream.py OUT random SEED N
                                    N FULL sections with random payloads,
                                    rich in 7e and section ids

Imported by convert_random.py, which also writes each random stream as
the QEMU profile would carry it, byte for byte.

The library's writer cannot make such streams from QEMU ones: a QEMU
payload with a footer and a valid record inside is cut there.
"""
import random
import struct
import sys
import zlib


def be16(v):
    return struct.pack(">H", v)


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def cstr(s):
    return bytes([len(s)]) + s


class Native:
    def __init__(self, footers=True):
        flags = 0x0001 | (0x0002 if footers else 0)
        h = b"\x89MSN\r\n\x1a\n" + be16(1) + be16(flags)
        self.d = bytearray(h + be32(zlib.crc32(h)))
        self.n = 0
        self.crcs = b""
        self.footers = footers

    def rec(self, typ, payload, flags=0):
        body = bytes([typ, flags]) + be32(len(payload)) + payload
        crc = zlib.crc32(be64(self.n) + body)
        self.d += body + be32(crc)
        self.crcs += be32(crc)
        self.n += 1

    def data(self, payload):
        for i in range(0, len(payload), 65536):
            self.rec(0x10, payload[i:i + 65536])

    def config(self, machine=b"test"):
        self.rec(0x07, b"")
        self.data(be32(len(machine)) + machine)

    def section(self, typ, sid, payload, idstr=b"dev", inst=0, ver=1):
        if typ in (1, 4):
            head = be32(sid) + cstr(idstr) + be32(inst) + be32(ver)
        else:
            head = be32(sid)
        self.rec(typ, head)
        if payload:
            self.data(payload)
        if self.footers:
            self.rec(0x7e, be32(sid))

    def end(self, vmdesc=None):
        self.rec(0x00, b"")
        if vmdesc is not None:
            self.rec(0x06, be32(len(vmdesc)))
            self.data(vmdesc)
        off = len(self.d)
        self.rec(0x7f, be64(self.n) + be64(off) + be32(zlib.crc32(self.crcs)))
        return bytes(self.d)


def full_head(sid, idstr=b"abc"):
    return b"\x04" + be32(sid) + cstr(idstr) + be32(0) + be32(1)


def phantom():
    s = Native()
    s.config()
    s.section(4, 5, b"xy" + b"\x7e" + be32(5) + full_head(9) + b"zz")
    return s.end()


def phantom3():
    s = Native()
    s.config()
    s.section(4, 5, b"xy" + b"\x7e" + be32(5) + full_head(9) + b"q" +
              b"\x7e" + be32(9) + full_head(5, b"dev"))
    return s.end()


class Qemu:
    """The same elements in the QEMU profile, written naively."""

    def __init__(self):
        self.d = bytearray(b"QEVM" + be32(3))

    def config(self, machine=b"test"):
        self.d += b"\x07" + be32(len(machine)) + machine

    def section(self, typ, sid, payload, idstr=b"dev", inst=0, ver=1):
        self.d += bytes([typ]) + be32(sid) + cstr(idstr) + be32(inst) + \
            be32(ver) + payload + b"\x7e" + be32(sid)

    def end(self, vmdesc=None):
        self.d += b"\x00"
        if vmdesc is not None:
            self.d += b"\x06" + be32(len(vmdesc)) + vmdesc
        return bytes(self.d)


def random_stream(seed, count):
    """Payloads built from pieces the QEMU grammar could read as record
    heads: footers of every live or past id, START/FULL/PART/END/COMMAND/
    EOF heads, and random bytes.  Returns the native stream, the QEMU one
    and the list of (id, idstr, payload length) of the sections."""
    rnd = random.Random(seed)
    s = Native()
    q = Qemu()
    s.config()
    q.config()
    ids = []
    for i in range(count):
        sid = rnd.randrange(1, 6)
        pieces = []
        for _ in range(rnd.randrange(0, 12)):
            k = rnd.randrange(9)
            other = rnd.randrange(0, 8)
            if k == 0:
                pieces.append(b"\x7e" + be32(sid))
            elif k == 1:
                pieces.append(b"\x7e" + be32(other))
            elif k == 2:
                pieces.append(full_head(other, b"x" * rnd.randrange(1, 4)))
            elif k == 3:
                pieces.append(b"\x01" + be32(other) + cstr(b"y") + be32(0)
                              + be32(1))
            elif k == 4:
                pieces.append(bytes([rnd.choice((2, 3))]) + be32(other))
            elif k == 5:
                pieces.append(b"\x08" + be16(rnd.randrange(0, 10)) + be16(0))
            elif k == 6:
                pieces.append(b"\x00\x06" + be32(2) + b"{}")
            elif k == 7:
                pieces.append(b"\x00")
            else:
                pieces.append(bytes(rnd.randrange(256)
                                    for _ in range(rnd.randrange(0, 6))))
        payload = b"".join(pieces)
        s.section(4, sid, payload, idstr=b"d%d" % sid)
        q.section(4, sid, payload, idstr=b"d%d" % sid)
        ids.append((sid, "d%d" % sid, len(payload)))
    vm = b'{"page_size": 4096, "devices": []}' if rnd.randrange(2) else None
    return s.end(vm), q.end(vm), ids


def main():
    if sys.argv[2] == "phantom":
        out = phantom()
    elif sys.argv[2] == "phantom3":
        out = phantom3()
    else:
        out = random_stream(int(sys.argv[3]), int(sys.argv[4]))[0]
    open(sys.argv[1], "wb").write(out)


if __name__ == "__main__":
    main()
