"""Test helpers: a synthetic NSynth split, its tar.gz archive, and a loopback HTTP file server."""

from __future__ import annotations

import io
import json
import socket
import struct
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from instrumentgen.nsynth import metadata

NOTES = (
    ("guitar", "acoustic", 1, 60, 100),
    ("bass", "synthetic", 33, 22, 50),
    ("flute", "acoustic", 2, 72, 127),
)


def make_example(family: str, source: str, index: int, pitch: int, velocity: int,
                 note: int) -> dict[str, Any]:
    """One valid ``examples.json`` entry following the NSynth conventions."""
    inst = metadata.instrument_str(family, source, index)
    bits = [0] * len(metadata.QUALITIES)
    bits[0] = 1
    return {
        "note": note, "note_str": metadata.note_str(inst, pitch, velocity), "instrument": index,
        "instrument_str": inst, "pitch": pitch, "velocity": velocity,
        "sample_rate": metadata.NSYNTH_SAMPLE_RATE, "qualities": bits,
        "qualities_str": metadata.qualities_str(bits),
        "instrument_family": metadata.FAMILIES.index(family), "instrument_family_str": family,
        "instrument_source": metadata.SOURCES.index(source), "instrument_source_str": source,
    }


def write_split(root: Path, split: str = "valid") -> Path:
    """Write ``root/nsynth-{split}/`` with examples.json and 0.1 s 16 kHz PCM_16 WAVs; return it."""
    split_dir = root / f"nsynth-{split}"
    (split_dir / "audio").mkdir(parents=True)
    examples = {}
    for i, (family, source, index, pitch, velocity) in enumerate(NOTES):
        ex = make_example(family, source, index, pitch, velocity, note=i)
        examples[ex["note_str"]] = ex
        t = np.arange(metadata.NSYNTH_SAMPLE_RATE // 10) / metadata.NSYNTH_SAMPLE_RATE
        wave = 0.3 * np.sin(2 * np.pi * 440.0 * 2 ** ((pitch - 69) / 12) * t)
        sf.write(split_dir / "audio" / f"{ex['note_str']}.wav", wave, metadata.NSYNTH_SAMPLE_RATE,
                 subtype="PCM_16")
    (split_dir / "examples.json").write_text(json.dumps(examples, indent=2))
    return split_dir


def split_archive_bytes(tmp: Path, split: str = "valid", top_dir: str | None = None) -> bytes:
    """A gzip tar of a synthetic split, its top folder named ``top_dir`` (default ``nsynth-{split}``)."""
    split_dir = write_split(tmp / "src", split)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(split_dir, arcname=top_dir or split_dir.name)
    return buf.getvalue()


def members_archive_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A gzip tar built from explicit ``(TarInfo, data)`` members (``data`` None for links/dirs)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_member(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    """A regular-file member."""
    return tarfile.TarInfo(name), data


def symlink_member(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    """A symlink member pointing at ``target``."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


# --------------------------------------------------------------------------- HTTP server


@dataclass
class ServerConfig:
    """Per-test behaviour of the loopback server."""

    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: int | None = None  # close the connection after this many body bytes ...
    drop_gets: int = 1  # ... on this many first GETs
    drop_reset: bool = False  # drop with a TCP reset instead of a clean close
    ignore_range: bool = False
    status: int | None = None  # answer every request with this error status
    corrupt: bool = False  # flip bytes in the middle of every body
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gets(self) -> list[dict[str, str]]:
        """Headers of the GET requests received so far."""
        with self.lock:
            return [h for m, _, h in self.requests if m == "GET"]


def _corrupted(data: bytes) -> bytes:
    """``data`` with a run of bytes in the middle inverted."""
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 64]) + data[mid + 64:]


class _Handler(BaseHTTPRequestHandler):
    """Serves ``config.files`` with HEAD, ``Range: bytes=N-`` and the configured faults."""

    config: ServerConfig

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr request log."""

    def _record(self) -> int:
        """Record the request; return the number of GETs so far (this one included)."""
        with self.config.lock:
            self.config.requests.append((self.command, self.path, dict(self.headers.items())))
            return sum(1 for m, _, _ in self.config.requests if m == "GET")

    def _body(self) -> bytes | None:
        """The file for this path (corrupted if so configured), or None after sending an error."""
        data = self.config.files.get(self.path)
        if self.config.status is not None or data is None:
            self.send_error(self.config.status or 404)
            return None
        return _corrupted(data) if self.config.corrupt else data

    def do_HEAD(self) -> None:
        """Headers only."""
        self._record()
        data = self._body()
        if data is not None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()

    def do_GET(self) -> None:
        """Full or ranged body, possibly cut short."""
        n_get = self._record()
        data = self._body()
        if data is None:
            return
        start = self._range_start()
        if start is not None and start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start is not None:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
            start = 0
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cfg = self.config
        if cfg.drop_after is not None and n_get <= cfg.drop_gets:
            self.wfile.write(body[:cfg.drop_after])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(body)

    def _range_start(self) -> int | None:
        """N from ``Range: bytes=N-`` unless ranges are ignored."""
        value = self.headers.get("Range")
        if self.config.ignore_range or not value or not value.startswith("bytes=") or not value.endswith("-"):
            return None
        return int(value[len("bytes="):-1])

    def _drop(self) -> None:
        """Close the connection now (with a reset if configured)."""
        self.close_connection = True
        if self.config.drop_reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


@contextmanager
def serve(config: ServerConfig) -> Iterator[str]:
    """Run a threaded HTTP server on 127.0.0.1 (free port); yield its base URL."""
    handler = type("Handler", (_Handler,), {"config": config})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL on a port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
