#!/usr/bin/env python3
"""Write the hostile inputs of migstream-dump state and of QEMU streams
without section footers into tests/data/invalid/ (one folder per case:
input, args, status, message, why).  Run from the source tree:

    python3 tests/dump/gen-state-cases.py

The streams are QEMU profile, version 3, built here byte by byte.
"""
import json
import os
import struct
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "invalid")


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def cstr(s):
    return bytes([len(s)]) + s


def head(t, sid, idstr=None, inst=0, ver=1):
    b = bytes([t]) + be32(sid)
    if idstr is not None:
        b += cstr(idstr) + be32(inst) + be32(ver)
    return b


def footer(sid):
    return b"\x7e" + be32(sid)


def ram_start(blocks, footers=True, sid=1):
    total = sum(n for _, n in blocks)
    p = be64(total | 0x04)
    for name, n in blocks:
        p += cstr(name) + be64(n)
    p += be64(0x10)
    return head(0x01, sid, b"ram", 0, 4) + p + (footer(sid) if footers else b"")


def ram_zero_page(name, addr=0):
    return be64(addr | 0x02) + cstr(name) + b"\x00"


def ram_end(footers=True, sid=1, pages=b""):
    return head(0x03, sid) + pages + be64(0x10) + (footer(sid) if footers else b"")


def full(sid, idstr, payload, footers=True, inst=0, ver=1):
    return head(0x04, sid, idstr, inst, ver) + payload + (footer(sid) if footers else b"")


def stream(body, desc):
    js = json.dumps(desc).encode() if not isinstance(desc, bytes) else desc
    out = b"QEVM" + be32(3) + body + b"\x00"
    if desc is not None:
        out += b"\x06" + be32(len(js)) + js
    return out


def dev(name, fields, inst=0, ver=1, subs=None):
    d = {"name": name, "instance_id": inst, "vmsd_name": name,
         "version": ver, "fields": fields}
    if subs is not None:
        d["subsections"] = subs
    return d


def desc(*devs):
    return {"page_size": 4096, "devices": list(devs)}


def case(name, data, args, status, message, why, stdin=False):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "input"), "wb") as f:
        f.write(data)
    for fn, v in (("args", args), ("status", str(status)),
                  ("message", message), ("why", why)):
        with open(os.path.join(d, fn), "w") as f:
            f.write(v + "\n")
    if stdin:
        open(os.path.join(d, "stdin"), "w").close()


U8 = {"name": "a", "type": "uint8", "size": 1}


def main():
    # Item 1: RAM block names that are not UTF-8 are refused, not dropped.
    for tag, nm, byte, pos in (("ff", b"pc\xffram", "0xff", 2),
                               ("overlong", b"\xc0\xafetc", "0xc0", 0),
                               ("surrogate", b"r\xed\xa0\x80", "0xed", 1),
                               ("cut", b"ram\xe2\x82", "0xe2", 3)):
        blocks = [(b"ok", 4096), (nm, 4096)]
        body = ram_start(blocks) + ram_end() + full(2, b"d", b"\x07")
        s = stream(body, desc(dev("d", [U8])))
        case("state-ram-name-utf8-" + tag, s, "state @IN@", 1,
             "RAM block 1's name: UTF-8 expected, found byte %s at position %d"
             % (byte, pos),
             "a RAM block name that is not UTF-8 (%s): state refused it "
             "instead of dropping the block from 'section sizes'" % tag)
    blocks = [(b"pc\xffram", 4096)]
    body = (ram_start(blocks) + ram_end(pages=ram_zero_page(b"pc\xffram"))
            + full(2, b"d", b"\x07"))
    case("state-m-ram-name-utf8", stream(body, desc(dev("d", [U8]))),
         "state -m @IN@", 1,
         "RAM block 0's name: UTF-8 expected, found byte 0xff at position 2",
         "state -m: a page of a RAM block whose name is not UTF-8")
    # An idstr that is not UTF-8: refused with the section.
    body = head(0x01, 2, b"b\xfe", 0, 1) + footer(2) + head(0x03, 2) + footer(2)
    case("state-idstr-utf8", stream(body, desc(dev("d", []))),
         "state @IN@", 1,
         "the section's idstr: UTF-8 expected, found byte 0xfe at position 1",
         "an opaque section's idstr that is not UTF-8 is refused, not printed raw")

    # Item 2: the value cap is per stream, not per section.
    z = {"name": "z", "type": "buffer", "size": 0, "array_len": 600}
    body = b"".join(full(i, b"d", b"", inst=i) for i in range(1, 4))
    d3 = desc(*[dev("d", [z], inst=i) for i in range(1, 4)])
    case("state-values-per-stream", stream(body, d3),
         "state --max-values 1000 @IN@", 1,
         "more than 1000 values decoded in the stream (the cap, set by --max-values)",
         "three sections of 600 zero-size values: a cap of 1000 per stream")
    # The default cap (4Mi values) is tested by check-state-limits.sh:
    # too slow for the runner's timeout under sanitizers.
    # Output: a long field name repeated by a struct array.
    long = {"name": "n" * 20000, "type": "buffer", "size": 0}
    st = {"name": "s", "type": "struct", "size": 0, "array_len": 100,
          "struct": {"vmsd_name": "x", "version": 1, "fields": [long]}}
    case("state-output-cap", stream(full(1, b"d", b""), desc(dev("d", [st]))),
         "state --max-output 1M @IN@", 1,
         "(the cap, set by --max-output, is 1048576 bytes plus 16 a byte of input)",
         "2 MB of field names printed for a payload of 0 bytes")
    # Memory: the same name copied as a key of every element.
    st2 = dict(st, array_len=1000)
    case("state-memory-cap-keys", stream(full(1, b"d", b""), desc(dev("d", [st2]))),
         "state --max-memory 16M @IN@", 1,
         "more than 16777216 bytes of memory (the cap, set by --max-memory)",
         "a 20 KB key copied into 1000 objects (20 MB) counts against --max-memory")
    many = desc(dev("d", [U8]), *[dev("e%d" % i, [U8]) for i in range(100)])
    case("state-memory-cap-vmdesc", stream(full(1, b"d", b"\x07"), many),
         "state --max-memory 4K @IN@", 1,
         "need more than 4096 bytes of memory parsed (the cap, set by --max-memory)",
         "the parsed VM description counts against --max-memory")
    case("desc-memory-cap", stream(full(1, b"d", b"\x07"), many),
         "desc --max-memory 4K @IN@", 1,
         "need more than 4096 bytes of memory parsed (the cap, set by --max-memory)",
         "desc parses the description under --max-memory too")
    # Deep nesting: 4 bytes of indentation a level for every value.
    inner = {"vmsd_name": "x", "version": 1, "fields": [dict(z, array_len=2000)]}
    for _ in range(200):
        inner = {"vmsd_name": "x", "version": 1,
                 "fields": [{"name": "s", "type": "struct", "size": 0,
                             "struct": inner}]}
    case("state-output-deep", stream(full(1, b"d", b""),
                                     desc(dev("d", inner["fields"]))),
         "state --max-output 1M @IN@", 1, "(the cap, set by --max-output",
         "2000 empty values printed 200 levels deep: 1.6 MB of indentation")
    for bad, msg in (("--max-values 0", "--max-values 0: a positive integer"),
                     ("--max-output 1X", "--max-output 1X: a positive integer"),
                     ("--max-memory -5", "--max-memory -5: a positive integer")):
        case("state-usage-" + bad.split()[0][6:], b"QEVM", "state %s @IN@" % bad,
             2, msg, "a cap that is not a positive size is a usage error")

    # Item 4: an iterative section the description lacks, in a stream
    # without footers: its end cannot be found.
    nf_ram = ram_start([(b"pc.ram", 4096)], footers=False) + ram_end(footers=False)
    d1 = desc(dev("d", [U8]))
    body = nf_ram + head(0x01, 3, b"block", 0, 1) + be64(0x02) + full(2, b"d", b"\x07", footers=False)
    for tag, args, why in (
            ("", "verify @IN@",
             "a block-migration START in a stream without footers cannot be delimited"),
            ("-state", "state @IN@",
             "state: the same, with the stream's own description")):
        case("nofooter-iterative" + tag, stream(body, d1), args, 1,
             "in a stream without section footers only the description delimits a section",
             why)

    # Item 5: streams without footers.
    good = nf_ram + full(2, b"d", b"\x07", footers=False)
    for tag, args, why in (
            ("", "verify @IN@",
             "no footers and no trailer (suppress-vmdesc): cannot be walked"),
            ("-extract", "extract @TMP@/x @IN@",
             "extract: no footers and no trailer")):
        case("nofooter-no-vmdesc" + tag, stream(good, None), args, 1,
             "has no section footers (a QEMU machine type before 2.4) and no VM description trailer",
             why)
    case("nofooter-bad-vmdesc", stream(good, b'{"devices": 5}'), "info @IN@", 1,
         'no "devices" array',
         "no footers, and a trailer that is no description: refused")
    case("nofooter-desc-short", stream(nf_ram + full(2, b"d", b"\x07\x07", footers=False),
                                       d1), "verify @IN@", 1,
         "unexpected CONFIGURATION",
         "the description says 1 byte, the payload has 2: the walk misreads and fails")
    case("nofooter-desc-long", stream(nf_ram + full(2, b"d", b"\x07", footers=False),
                                      desc(dev("d", [U8, dict(U8, name="b")]))),
         "convert --to native @IN@ @TMP@/o", 1, "unexpected VM description",
         "the description says 2 bytes, the payload has 1")
    # A trailer planted in a payload: the description says the device has
    # no bytes, so the walk reads the payload as EOF and a trailer that
    # spans to the end of the file; it must be the trailer that ends it.
    real = json.dumps(desc(dev("d", []))).encode()
    tail = b"\x00\x06" + be32(len(real)) + real
    planted = b"\x00\x06"
    rest = b"{" + tail  # the planted JSON: '{', the real trailer, its '}'
    body = nf_ram + full(2, b"d", planted + be32(len(rest)) + rest[:0], footers=False)
    data = b"QEVM" + be32(3) + body + rest
    case("nofooter-planted-vmdesc", data, "verify @IN@", 1,
         "that description does not fit the stream",
         "a trailer planted in a payload of a stream without footers")
    # With footers: a trailer whose JSON text hides, at its end, a second
    # trailer that also ends the file.  The exact-end rule takes the inner
    # one; the walk reaches the outer one: state must not decode with it.
    inner = json.dumps(desc(dev("d", [U8]))).encode()
    hidden = b"\x00\x06" + be32(len(inner)) + inner
    outer = b"{" + b" " * 8 + hidden
    body = full(2, b"d", b"\x07")
    data2 = b"QEVM" + be32(3) + body + b"\x00\x06" + be32(len(outer)) + outer
    case("state-trailer-in-trailer", data2, "state @IN@", 1,
         "that description does not fit the stream",
         "state decoded with a trailer hidden inside the one the walk ends at")
    case("nofooter-planted-vmdesc-state", data, "state @IN@", 1,
         "that description does not fit the stream",
         "state: a trailer planted in a payload of a stream without footers")


if __name__ == "__main__":
    sys.exit(main())
