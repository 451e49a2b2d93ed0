"""Real servers on 127.0.0.1 for the download tests: moto's S3 server, a fault-injecting proxy in
front of it, and a plain HTTP file server. No function of morphotx is mocked: the code under
test talks HTTP to these servers exactly as it would to S3, Zenodo or figshare."""

from __future__ import annotations

import http.client
import http.server
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path


@contextmanager
def moto_s3():
    """moto's S3 server in a thread on a free port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_put(endpoint: str, bucket: str, key: str, data: bytes, part_size: int | None = None) -> str:
    """Upload ``data`` readable without credentials, as in the Cell Painting Gallery; with ``part_size`` as a
    multipart upload (ETag ``...-N``). Returns the ETag."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    if part_size is None:
        return s3.put_object(Bucket=bucket, Key=key, Body=data, ACL="public-read")["ETag"].strip('"')
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ACL="public-read")
    parts = []
    for i, start in enumerate(range(0, len(data), part_size), start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=i,
                           Body=data[start:start + part_size])
        parts.append({"PartNumber": i, "ETag": r["ETag"]})
    r = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": parts})
    return r["ETag"].strip('"')


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Forwards to ``upstream``; ``faults`` (shared dict) can cut or corrupt GET bodies."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        conn = http.client.HTTPConnection(*self.server.upstream)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        faults = self.server.faults
        self.server.log.append((self.command, self.path, self.headers.get("Range"), resp.status))
        if self.command == "GET" and data and faults.get("cut", 0) > 0:
            faults["cut"] -= 1
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding"):
                    self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 3])  # declared length is the full body
            self.wfile.flush()
            self.close_connection = True
            return
        if self.command == "GET" and data and faults.get("corrupt"):
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


@contextmanager
def fault_proxy(upstream_url: str):
    """A proxy on a free port in front of ``upstream_url``; yields ``(url, faults, log)``."""
    host, port = upstream_url.split("//")[1].split(":")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    server.upstream = (host, int(port))
    server.faults, server.log = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.faults, server.log
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Ranges(_Quiet):
    """The file server plus ``Range: bytes=N-`` (206 Partial Content), as Zenodo and figshare answer."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().do_GET()
        start = int(rng.split("=", 1)[1].split("-", 1)[0])
        data = path.read_bytes()
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@contextmanager
def http_files(root: Path, ranges: bool = False):
    """The standard library's file server over ``root`` in a thread (``ranges``: honouring Range
    requests); yields its base URL."""
    handler = _Ranges if ranges else _Quiet
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
