"""Streaming a ZIP archive out in fixed-size chunks, with bounded memory.

``zipfile`` writes synchronously into ``ChunkBuffer`` (a non-seekable raw stream, so entries use
data descriptors and nothing is ever rewritten); after each page of records the builder hands
every complete chunk to an async ``flush`` callback (which stores it). At any moment the process
holds at most one chunk plus one compressed page, whatever the size of the organization.

Each file's SHA-256, byte count and record count are computed over its uncompressed content as it
is written; ``manifest.json`` is written last, listing them.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator, Awaitable, Callable

from portal.exports.format import dumps

CHUNK_SIZE = 256 * 1024


class ChunkBuffer(io.RawIOBase):
    """A write-only, non-seekable byte sink that counts and hashes everything written to it."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()
        self._pos = 0
        self._sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        self._buf += view
        self._sha.update(view)
        self._pos += len(view)
        return len(view)

    def tell(self) -> int:
        return self._pos

    @property
    def pending(self) -> int:
        return len(self._buf)

    def take(self, size: int) -> bytes:
        with memoryview(self._buf) as view:
            out = bytes(view[:size])  # one copy, no intermediate slice
        del self._buf[:size]
        return out

    @property
    def size(self) -> int:
        return self._pos

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True)
class FileEntry:
    name: str
    records: int
    bytes: int
    sha256: str

    def as_manifest(self) -> dict:
        return {"name": self.name, "records": self.records, "bytes": self.bytes, "sha256": self.sha256}


Flush = Callable[[bytes], Awaitable[None]]


class ArchiveBuilder:
    """Build a ZIP file by file; ``flush`` receives each chunk of ``chunk_size`` bytes in order
    (the last one may be shorter and is returned by ``close()`` instead)."""

    def __init__(self, flush: Flush, *, generated_at: datetime, chunk_size: int = CHUNK_SIZE, compresslevel: int = 6):
        self._flush = flush
        self._chunk_size = chunk_size
        self._out = ChunkBuffer()
        self._zip = zipfile.ZipFile(self._out, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self._date_time = generated_at.timetuple()[:6]
        self.files: list[FileEntry] = []

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._date_time)  # type: ignore[arg-type]
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    async def drain(self) -> None:
        """Hand every complete chunk to ``flush``."""
        while self._out.pending >= self._chunk_size:
            await self._flush(self._out.take(self._chunk_size))

    async def add(
        self,
        name: str,
        layout: str,
        pages: AsyncIterator[list[dict]],
        on_page: Callable[[int], Awaitable[None]] | None = None,
    ) -> FileEntry:
        """Write one file from pages of records: ``object`` (one pretty-printed JSON object),
        ``array`` (a JSON array, one record per line) or ``lines`` (JSON Lines)."""
        sha = hashlib.sha256()
        size = records = 0
        # Entries of unbounded size (the audit log) need ZIP64 sizes in their data descriptor.
        with self._zip.open(self._info(name), mode="w", force_zip64=layout == "lines") as fh:

            def put(data: bytes) -> None:
                nonlocal size
                if data:
                    sha.update(data)
                    fh.write(data)
                    size += len(data)

            if layout == "array":
                put(b"[")
            async for page in pages:
                if layout == "object":
                    if records or len(page) != 1:
                        raise ValueError(f"{name}: an object file holds exactly one record")
                    put(dumps(page[0], pretty=True) + b"\n")
                elif layout == "array":
                    put(b"".join((b"\n" if records + i == 0 else b",\n") + dumps(r) for i, r in enumerate(page)))
                else:
                    put(b"".join(dumps(r) + b"\n" for r in page))
                records += len(page)
                await self.drain()
                if on_page is not None:
                    await on_page(len(page))
            if layout == "array":
                put(b"\n]\n" if records else b"]\n")
            elif layout == "object" and not records:
                put(b"{}\n")
        entry = FileEntry(name, records, size, sha.hexdigest())
        self.files.append(entry)
        await self.drain()
        return entry

    async def close(self, manifest: dict) -> bytes:
        """Write ``manifest.json`` (with the file list) and the central directory; return the
        remaining tail (shorter than a chunk, possibly empty)."""
        manifest = {**manifest, "files": [f.as_manifest() for f in self.files]}
        self._zip.writestr(self._info("manifest.json"), dumps(manifest, pretty=True) + b"\n")
        self._zip.close()
        await self.drain()
        return self._out.take(self._out.pending)

    @property
    def size(self) -> int:
        return self._out.size

    def hexdigest(self) -> str:
        return self._out.hexdigest()
