"""h5py workloads of s3mount-bench; run with Debian's /usr/bin/python3.

    h5bench.py create PATH SIDE CHUNK   write a SIDE x SIDE float32 dataset "data"
                                        in CHUNK x CHUNK chunks, no compression
    h5bench.py read-subset PATH         read one column of chunks from the middle
    h5bench.py read-whole PATH          read the whole dataset

The read modes print {"seconds": S, "bytes": N}: the time from opening the
file to having the data in memory, which leaves out the interpreter's start.
"""
import json
import sys
import time

import h5py
import numpy as np


def create(path, side, chunk):
    rng = np.random.default_rng(8)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", shape=(side, side), dtype="f4", chunks=(chunk, chunk))
        for i in range(0, side, chunk):
            n = min(chunk, side - i)
            d[i:i + n, :] = rng.random((n, side), dtype=np.float32)
    print(json.dumps({"created": path}))


def read(path, mode):
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        d = f["data"]
        if mode == "read-subset":
            c = d.chunks[1]
            j = (d.shape[1] // 2 // c) * c
            a = d[:, j:j + c]
        else:
            a = d[...]
    t1 = time.perf_counter()
    print(json.dumps({"seconds": t1 - t0, "bytes": int(a.nbytes)}))


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "create":
        create(path, int(sys.argv[3]), int(sys.argv[4]))
    elif mode in ("read-subset", "read-whole"):
        read(path, mode)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
