#!/usr/bin/env python3
"""convert --to qemu is true or refused, on many random native streams.

    convert_random.py DUMP TMPDIR COUNT

Each stream (nativestream.random_stream) is also written as the QEMU
profile carries it, naively; that file, walked by 'sections --json',
either gives back the sections it was made of (then convert must succeed
with exactly those bytes, and converting back must give the native
stream byte for byte) or it does not (then convert must refuse, status 1,
naming the first record that does not come back).  Prints a tally; exits
1 on the first disagreement.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nativestream  # noqa: E402


def run(*args):
    p = subprocess.run(args, capture_output=True)
    if p.returncode > 3 or b"Sanitizer" in p.stderr or \
            b"runtime error" in p.stderr:
        sys.exit("%s: status %d: %s" % (" ".join(args), p.returncode,
                                         p.stderr.decode(errors="replace")))
    return p


def parses_back(dump, path, ids):
    p = run(dump, "sections", "--json", path)
    if p.returncode:
        return False
    recs = [r for r in json.loads(p.stdout) if r["type"] == "FULL"]
    return [(r["section_id"], r["idstr"], r["payload_length"])
            for r in recs] == ids


def main():
    dump, tmp, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tally = {"converted": 0, "refused": 0}
    msn = os.path.join(tmp, "r.msn")
    naive = os.path.join(tmp, "r.naive")
    out = os.path.join(tmp, "r.qemu")
    back = os.path.join(tmp, "r.back")
    for seed in range(count):
        native, qemu, ids = nativestream.random_stream(seed, 1 + seed % 7)
        open(msn, "wb").write(native)
        open(naive, "wb").write(qemu)
        ok = parses_back(dump, naive, ids)
        p = run(dump, "convert", "--to", "qemu", msn, out)
        what = "seed %d (%d sections)" % (seed, len(ids))
        if ok:
            if p.returncode:
                sys.exit("%s: a faithful conversion refused: %s" %
                         (what, p.stderr.decode(errors="replace")))
            if open(out, "rb").read() != qemu:
                sys.exit("%s: converted bytes differ" % what)
            p = run(dump, "convert", "--to", "native", out, back)
            if p.returncode or open(back, "rb").read() != native:
                sys.exit("%s: native -> qemu -> native differs: %s" %
                         (what, p.stderr.decode(errors="replace")))
            tally["converted"] += 1
        else:
            if p.returncode != 1 or b"refused" not in p.stderr or \
                    b": offset 0x" not in p.stderr:
                sys.exit("%s: a conversion that does not read back: "
                         "status %d: %s" % (what, p.returncode,
                                            p.stderr.decode(
                                                errors="replace")))
            if os.path.exists(out) or os.path.exists(out + ".tmp"):
                sys.exit("%s: refused, but an output was left" % what)
            tally["refused"] += 1
        for f in (out, back):
            if os.path.exists(f):
                os.unlink(f)
    print("random native streams: %d converted to qemu and back byte for "
          "byte, %d refused" % (tally["converted"], tally["refused"]))
    if not tally["converted"] or not tally["refused"]:
        sys.exit("both outcomes expected among the streams")


main()
