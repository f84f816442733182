"""A reproducible tar.gz written in one streaming pass, in up to three independently compressed parts.

The archive (docs/OUTPUTS.md) is ONE gzip member holding a PAX-format tar whose members are
sorted by path.  The change folders (``D/changes/...``: millions of small files at org scale) are
tarred and compressed while the folder is written (:class:`Deflater`, on a background thread, so
nothing is read back); the files that sort before them (``POLICY.md``, ``README.txt``,
``SHA256SUMS`` - whose content needs every change file's hash) and after them are compressed when
the archive is assembled.  Each part is a raw deflate stream ending on a byte boundary
(``Z_SYNC_FLUSH``; the last one ``Z_FINISH``), so their concatenation is one valid deflate stream;
the gzip CRC-32 of the whole is combined from the parts' CRCs (:func:`crc32_combine`, zlib's
algorithm).  ``archive.build_archive`` re-creates the same bytes from a folder with the same parts.

Headers are tarfile's (``TarInfo.tobuf``, PAX format) byte for byte: plain ASCII names of at most
100 bytes take a fast path that builds the same ustar block (checked in tests/unit/publish/evidence/test_archive.py).
"""

from __future__ import annotations

import functools
import queue
import struct
import tarfile
import threading
import zlib
from typing import BinaryIO

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
#: gzip level.  3 since issue #15 (was zlib's default 6, itself ~3x faster than 9): on the 20k-change
#: benchmark's 458 MB tar, level 3 compresses in 1.8 CPU s against 3.4 (the nightly step's largest
#: single cost) for 37.8 MB against 30.4, still smaller than the 41.9 MB archive of level 6 before the
#: OSCAL document lost its pass observations (docs/PERFORMANCE.md, "Evidence: the nightly step")
LEVEL = 3
CHUNK = 1 << 20  # bytes handed to the compressor thread at a time
_NUL = b"\0" * BLOCK
_MAGIC = tarfile.POSIX_MAGIC  # b"ustar\x0000"


def _octal(n: int, digits: int) -> bytes:
    return b"%0*o\0" % (digits - 1, n)


def header(name: str, size: int, mtime: int, is_dir: bool) -> bytes:
    """The tar header block(s) tarfile writes (PAX format, owner 0/0 without names, mode 0755 / 0644)."""
    if is_dir and not name.endswith("/"):
        name += "/"
    raw = name.encode("ascii", "replace")
    if (len(raw) > 100 or not name.isascii() or not 0 <= size < 8 ** 11 or not 0 <= mtime < 8 ** 11):
        return _slow_header(name, size, mtime, is_dir)
    ids, times, tail, fixed = _parts(mtime, is_dir)
    size_field = _octal(0 if is_dir else size, 12)
    chksum = fixed + sum(raw) + sum(size_field)  # the checksum field counts as 8 spaces (tarfile.calc_chksums)
    return b"".join((raw, _NUL[:100 - len(raw)], ids, size_field, times, b"%06o\0 " % chksum, tail))


@functools.lru_cache(maxsize=16)
def _parts(mtime: int, is_dir: bool) -> tuple[bytes, bytes, bytes, int]:
    """The fixed fields of a ustar header around name, size and checksum: (mode uid gid, mtime, type ...
    padding, the sum of their bytes and of the checksum field as 8 spaces)."""
    ids = _octal(0o755 if is_dir else 0o644, 8) + _octal(0, 8) + _octal(0, 8)
    times = _octal(mtime, 12)
    tail = b"".join((tarfile.DIRTYPE if is_dir else tarfile.REGTYPE, b"\0" * 100, _MAGIC, b"\0" * 32, b"\0" * 32,
                     b"\0" * 8, b"\0" * 8, b"\0" * 155))
    tail += b"\0" * (BLOCK - 156 - len(tail))
    return ids, times, tail, sum(ids) + sum(times) + sum(b"        ") + sum(tail)


def _slow_header(name: str, size: int, mtime: int, is_dir: bool) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = 0o755 if is_dir else 0o644
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.size = 0 if is_dir else size
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def padding(size: int) -> bytes:
    rem = size % BLOCK
    return _NUL[:BLOCK - rem] if rem else b""


def end_of_archive(offset: int) -> bytes:
    """Two zero blocks, then zeros up to a whole record (what TarFile.close writes)."""
    offset += 2 * BLOCK
    rem = offset % RECORD
    return b"\0" * (2 * BLOCK + (RECORD - rem if rem else 0))


class Deflater:
    """One raw-deflate part: tar bytes in, compressed bytes to ``out`` from a background thread.

    ``crc`` / ``length`` are those of the uncompressed input; :meth:`close` ends the part on a byte
    boundary (``final``: the end of the deflate stream)."""

    def __init__(self, out: BinaryIO, level: int = LEVEL):
        self.out = out
        self.crc = 0
        self.length = 0
        self._z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, 0)
        self._buf: list[bytes] = []
        self._n = 0
        self._q: queue.Queue = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ccwatch-deflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._q.get()) is not None:
            if self._error is None:
                try:
                    self.crc = zlib.crc32(data, self.crc)
                    self.out.write(self._z.compress(data))
                except BaseException as exc:  # reported by close()
                    self._error = exc

    def write(self, data: bytes) -> None:
        self._extend((data,))

    def _extend(self, parts: tuple[bytes, ...]) -> None:
        self._buf += parts
        self._n += sum(map(len, parts))
        if self._n >= CHUNK:
            self._push()

    def _push(self) -> None:
        if self._buf:
            data = b"".join(self._buf)
            self._buf, self._n = [], 0
            self.length += len(data)
            self._q.put(data)

    @property
    def offset(self) -> int:
        """Uncompressed bytes written so far."""
        return self.length + self._n

    def add(self, name: str, data: bytes, mtime: int) -> None:
        """A file member: header, data, padding (one buffer hand-off: a night adds ~143k)."""
        self._extend((header(name, len(data), mtime, False), data, padding(len(data))))

    def add_dir(self, name: str, mtime: int) -> None:
        self.write(header(name, 0, mtime, True))

    def close(self, final: bool = False) -> None:
        self._push()
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        self.out.write(self._z.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH))

    def abort(self) -> None:
        """Stop the thread (after an error on the caller's side); the part is unusable."""
        self._error = self._error or RuntimeError("aborted")
        self._buf = []
        self._q.put(None)
        self._thread.join()


def gzip_header(mtime: int, level: int = LEVEL) -> bytes:
    """gzip.GzipFile's header for filename="" and this mtime / level."""
    xfl = b"\002" if level == 9 else b"\004" if level == 1 else b"\000"
    return b"\037\213\010\000" + struct.pack("<L", mtime) + xfl + b"\377"


def gzip_trailer(crc: int, length: int) -> bytes:
    return struct.pack("<LL", crc & 0xFFFFFFFF, length & 0xFFFFFFFF)


def _gf2_times(mat: list[int], vec: int) -> int:
    s, i = 0, 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc32(A), crc32(B) and len(B) (zlib's crc32_combine)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2
