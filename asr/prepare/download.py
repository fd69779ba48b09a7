"""Downloads that survive a dropped connection, and archives unpacked once, safely.

    fetch(url, dest, sha256)   resumes a partial `dest.part` with an HTTP Range request, checks the
                               SHA-256 when one is known, then renames: `dest` is only ever whole
    extract(archive, folder)   unpacks a tar(.gz) (no absolute paths, no `..`, no links out) and
                               leaves a marker so a second run skips it

    asr download librispeech DIR --subsets dev-clean test-clean --lm 4-gram.arpa.gz
    asr download an4 DIR
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm


class DownloadError(Exception):
    """A download or archive that failed; the message names the URL or file and what to do."""


class Resource(NamedTuple):
    url: str
    sha256: str | None  # None where the publisher gives no checksum


OPENSLR = "https://www.openslr.org/resources"
# SHA-256 of the archives as published on openslr.org (resource 12): the same values torchaudio's
# LIBRISPEECH dataset checks.
LIBRISPEECH = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}
# The official LMs (resource 11). openslr publishes no checksums for these; they are checked as
# gzip streams instead (a truncated or corrupt file fails to decompress to its end).
LIBRISPEECH_LM = ("3-gram.arpa.gz", "3-gram.pruned.1e-7.arpa.gz", "3-gram.pruned.3e-7.arpa.gz", "4-gram.arpa.gz",
                  "librispeech-lexicon.txt", "librispeech-vocab.txt", "librispeech-lm-norm.txt.gz")


# AN4 as ESPnet and NeMo fetch it. CMU publishes no checksum for it: it is checked as a whole gzip
# stream, and unpacking checks the tar.
AN4 = Resource("http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz", None)


def librispeech(subset: str) -> Resource:
    if subset not in LIBRISPEECH:
        raise DownloadError(f"unknown LibriSpeech subset {subset!r}; choose from {', '.join(LIBRISPEECH)}")
    return Resource(f"{OPENSLR}/12/{subset}.tar.gz", LIBRISPEECH[subset])


def librispeech_lm(name: str) -> Resource:
    if name not in LIBRISPEECH_LM:
        raise DownloadError(f"unknown LibriSpeech LM file {name!r}; choose from {', '.join(LIBRISPEECH_LM)}")
    return Resource(f"{OPENSLR}/11/{name}", None)


def fetch(url: str, dest: str | os.PathLike, sha256: str | None = None, retries: int = 5,
          timeout: float = 60.0, progress: bool = True, backoff: float = 2.0) -> Path:
    """Download `url` to `dest`, continuing `dest.part` where an earlier attempt or run left it.
    A finished `dest` with the right checksum is left alone (re-running is free)."""
    dest = Path(dest)
    if dest.exists():
        if sha256 and _sha256(dest) != sha256:
            raise DownloadError(f"{dest}: exists but its SHA-256 is not the published one; delete it and run again")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _get(url, part, timeout, progress)
            break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", None) or e
            if isinstance(e, urllib.error.HTTPError):
                reason = f"HTTP {e.code} {e.reason}"
                if 400 <= e.code < 500 and e.code not in (408, 429):  # asking again will not help
                    attempt = retries
            if attempt == retries:
                kept = f"; {part.stat().st_size:,} bytes kept in {part}, run again to resume" if part.exists() else ""
                raise DownloadError(f"{url}: download failed ({reason}){kept}") from None
            time.sleep(min(60.0, backoff * 2 ** (attempt - 1)))
    if sha256:
        got = _sha256(part)
        if got != sha256:
            part.unlink()
            raise DownloadError(f"{url}: SHA-256 {got} is not the published {sha256}; the download was discarded")
    elif dest.suffix == ".gz":
        _check_gzip(part, url)
    os.replace(part, dest)
    return dest


def _get(url: str, part: Path, timeout: float, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part is whole
            return
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: start again
            have = 0
        size = response.headers.get("Content-Length")
        total = have + int(size) if size else None
        with open(part, "ab" if have else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=Path(url).name,
                disable=None if progress else True, leave=False) as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size < total:  # the server closed early
        raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def extract(archive: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Unpack `archive` into `folder` once: a marker file records that it finished."""
    archive, folder = Path(archive), Path(folder)
    marker = folder / f".{archive.name}.extracted"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")  # refuses absolute paths, '..' and links out
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DownloadError(f"{archive}: cannot unpack ({type(e).__name__}: {e})") from None
    marker.touch()
    return folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_gzip(path: Path, url: str) -> None:
    try:
        with gzip.open(path, "rb") as f, open(os.devnull, "wb") as null:
            shutil.copyfileobj(f, null, 1 << 20)
    except (OSError, EOFError) as e:
        path.unlink()
        raise DownloadError(f"{url}: not a whole gzip file ({e}); the download was discarded") from None


def download_librispeech(out_dir: str | os.PathLike, subsets: list[str], lm_files: list[str] = (),
                         progress: bool = True) -> list[str]:
    """Subsets into OUT/LibriSpeech/<subset>/ (archives kept in OUT/archives/), LM files into
    OUT/lm/. Every step is skipped when already done. Returns a line per item."""
    out_dir = Path(out_dir)
    resources = [librispeech(s) for s in subsets]  # unknown names fail before any download
    lms = [librispeech_lm(name) for name in lm_files]
    lines = []
    for subset, resource in zip(subsets, resources):
        archive = fetch(resource.url, out_dir / "archives" / f"{subset}.tar.gz", resource.sha256, progress=progress)
        extract(archive, out_dir)
        lines.append(f"{out_dir / 'LibriSpeech' / subset}\t(from {resource.url}, SHA-256 checked)")
    for name, resource in zip(lm_files, lms):
        path = fetch(resource.url, out_dir / "lm" / name, progress=progress)
        lines.append(f"{path}\t(from {resource.url}{', gzip checked' if name.endswith('.gz') else ''})")
    return lines


def download_an4(out_dir: str | os.PathLike, progress: bool = True) -> list[str]:
    """AN4 into OUT/an4/ (etc/, wav/), the archive kept in OUT/archives/; skipped when done."""
    out_dir = Path(out_dir)
    resource = AN4
    archive = fetch(resource.url, out_dir / "archives" / "an4_sphere.tar.gz", resource.sha256, progress=progress)
    extract(archive, out_dir)
    if not (out_dir / "an4" / "etc").is_dir():
        raise DownloadError(f"{archive}: unpacked, but holds no an4/etc/ folder: not the AN4 release")
    return [f"{out_dir / 'an4'}\t(from {resource.url}, gzip checked; CMU publishes no checksum)"]
