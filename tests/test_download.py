"""Downloads against a local HTTP server on 127.0.0.1: checksums, resuming, unpacking."""

import hashlib
import io
import random
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from asr.prepare.download import DownloadError, extract, fetch


class Server:
    """Serves `files` (name -> bytes) with Range support; `cut[name] = n` makes the next
    response for that name stop after n bytes, as a dropped connection would."""

    def __init__(self):
        self.files, self.cut, self.ranges = {}, {}, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                start = 0
                header = self.headers.get("Range")
                server.ranges.append(header)
                if header:
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                limit = server.cut.pop(name, None)
                self.wfile.write(body[:limit] if limit is not None else body)
                if limit is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TREE = {"LibriSpeech/dev-clean/1/2/1-2.trans.txt": b"1-2-0000 HELLO\n",
        "LibriSpeech/dev-clean/1/2/1-2-0000.flac": random.Random(0).randbytes(50000)}  # incompressible


def test_a_broken_checksum_is_refused_and_nothing_is_kept(server, tmp_path):
    server.files["dev-clean.tar.gz"] = _tarball(TREE)
    with pytest.raises(DownloadError, match="SHA-256 .* is not the published 0000; the download was discarded"):
        fetch(f"{server.url}/dev-clean.tar.gz", tmp_path / "dev-clean.tar.gz", sha256="0000", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_download_resumes_where_it_stopped(server, tmp_path):
    data = _tarball(TREE)
    server.files["dev-clean.tar.gz"] = data
    server.cut["dev-clean.tar.gz"] = 20000  # the connection drops after 20,000 bytes
    sha = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "dev-clean.tar.gz"
    with pytest.raises(DownloadError, match="20,000 bytes kept in .*dev-clean.tar.gz.part, run again to resume"):
        fetch(f"{server.url}/dev-clean.tar.gz", dest, sha256=sha, retries=1, progress=False)
    assert not dest.exists()
    assert fetch(f"{server.url}/dev-clean.tar.gz", dest, sha256=sha, retries=1, progress=False) == dest
    assert server.ranges == [None, "bytes=20000-"]  # the second request asked only for the rest
    assert dest.read_bytes() == data and not (tmp_path / "dev-clean.tar.gz.part").exists()
    # A finished file is not fetched again; unpacking happens once.
    fetch(f"{server.url}/dev-clean.tar.gz", dest, sha256=sha, progress=False)
    assert len(server.ranges) == 2
    extract(dest, tmp_path / "src")
    assert (tmp_path / "src" / "LibriSpeech/dev-clean/1/2/1-2.trans.txt").read_bytes() == b"1-2-0000 HELLO\n"
    (tmp_path / "src" / "LibriSpeech/dev-clean/1/2/1-2.trans.txt").unlink()
    extract(dest, tmp_path / "src")
    assert not (tmp_path / "src" / "LibriSpeech/dev-clean/1/2/1-2.trans.txt").exists()


def test_retries_resume_within_one_call(server, tmp_path):
    data = b"0123456789" * 3000
    server.files["lexicon.txt"] = data
    server.cut["lexicon.txt"] = 7
    fetch(f"{server.url}/lexicon.txt", tmp_path / "lexicon.txt", retries=2, progress=False, backoff=0)
    assert (tmp_path / "lexicon.txt").read_bytes() == data and server.ranges == [None, "bytes=7-"]


def test_unsafe_archives_and_missing_files_are_one_line_errors(server, tmp_path):
    server.files["evil.tar.gz"] = _tarball({"../outside.txt": b"gotcha"})
    fetch(f"{server.url}/evil.tar.gz", tmp_path / "evil.tar.gz", progress=False)
    with pytest.raises(DownloadError, match="evil.tar.gz: cannot unpack"):
        extract(tmp_path / "evil.tar.gz", tmp_path / "src")
    assert not (tmp_path / "outside.txt").exists()
    with pytest.raises(DownloadError, match=r"nope.tar.gz: download failed \(HTTP 404 Not Found\)$"):
        fetch(f"{server.url}/nope.tar.gz", tmp_path / "nope.tar.gz", retries=5, progress=False)  # no retry
    server.files["lm.arpa.gz"] = b"\x1f\x8b not really gzip"
    with pytest.raises(DownloadError, match="lm.arpa.gz: not a whole gzip file"):
        fetch(f"{server.url}/lm.arpa.gz", tmp_path / "lm.arpa.gz", progress=False)
    assert not (tmp_path / "lm.arpa.gz").exists()


def test_download_command_fetches_unpacks_and_skips_what_is_done(server, tmp_path, capsys, monkeypatch):
    from asr.cli import main
    from asr.prepare import download

    data = _tarball(TREE)
    server.files["12/dev-clean.tar.gz"] = data
    server.files["11/librispeech-vocab.txt"] = b"HELLO\n"
    monkeypatch.setattr(download, "OPENSLR", server.url)
    monkeypatch.setitem(download.LIBRISPEECH, "dev-clean", hashlib.sha256(data).hexdigest())
    args = ["download", "librispeech", str(tmp_path / "src"), "--subsets", "dev-clean", "--lm", "librispeech-vocab.txt"]
    for _ in range(2):
        assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'src' / 'LibriSpeech' / 'dev-clean'}\t(from {server.url}/12/dev-clean.tar.gz")
    assert (tmp_path / "src" / "lm" / "librispeech-vocab.txt").read_text() == "HELLO\n"
    assert len(server.ranges) == 2  # the second run fetched nothing
    assert main(["download", "librispeech", str(tmp_path), "--subsets", "dev-cleen"]) == 1
    assert "unknown LibriSpeech subset 'dev-cleen'" in capsys.readouterr().err


def test_an4_download_fetches_checks_the_gzip_unpacks_and_skips_what_is_done(server, tmp_path, capsys, monkeypatch):
    from asr.cli import main
    from asr.prepare import download

    tree = {"an4/etc/an4_test.fileids": b"an4test_clstk/fcaw/an406-fcaw-b\n",
            "an4/wav/an4test_clstk/fcaw/an406-fcaw-b.sph": random.Random(1).randbytes(30000)}
    server.files["an4/an4_sphere.tar.gz"] = _tarball(tree)
    monkeypatch.setattr(download, "AN4", download.Resource(f"{server.url}/an4/an4_sphere.tar.gz", None))
    for _ in range(2):
        assert main(["download", "an4", str(tmp_path / "src")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{tmp_path / 'src' / 'an4'}\t(from {server.url}/an4/an4_sphere.tar.gz, gzip checked; "
                   "CMU publishes no checksum)"] * 2
    assert (tmp_path / "src" / "an4" / "wav" / "an4test_clstk" / "fcaw" / "an406-fcaw-b.sph").stat().st_size == 30000
    assert len(server.ranges) == 1  # the second run fetched nothing

    server.files["an4/an4_sphere.tar.gz"] = _tarball(tree)[:-100]  # cut short: not a whole gzip stream
    with pytest.raises(DownloadError, match="an4_sphere.tar.gz: not a whole gzip file"):
        download.download_an4(tmp_path / "again", progress=False)
    assert not list((tmp_path / "again" / "archives").iterdir())
    server.files["an4/an4_sphere.tar.gz"] = _tarball({"other/README": b"x"})
    with pytest.raises(DownloadError, match="holds no an4/etc/ folder"):
        download.download_an4(tmp_path / "other", progress=False)
    assert main(["download", "an4", str(tmp_path), "--subsets", "dev-clean"]) == 2
    assert "--subsets and --lm are for librispeech" in capsys.readouterr().err
