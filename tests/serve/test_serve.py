"""`sinsr-host serve` driven over HTTP (issue 37): the CLI's bytes, every error status, keep-alive,
a request cancelled mid-body, a slow client, SIGTERM with an upload in flight. Standard library
only: the server is started on port 0 and its printed address is used.

Usage: test_serve.py SINSR_HOST SOURCE_DIR
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

if len(sys.argv) < 3:
    sys.exit("usage: test_serve.py SINSR_HOST SOURCE_DIR")
HOST_EXE, SOURCE = (os.path.abspath(a) for a in sys.argv[1:3])
sys.path.insert(0, os.path.join(SOURCE, "tests", "fuzz"))
from hostile_files import png_rgb as png  # noqa: E402
sys.argv = sys.argv[:1]
SAMPLE = os.path.join(SOURCE, "samples", "lr_x4", "autumn.png")  # 96x64


class Server:
    """One `sinsr-host serve --port 0` process; .port once it listens."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([HOST_EXE, "serve", "--port", "0", "-q", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            self.proc.kill()
            raise AssertionError("serve did not start: %r %s" % (line, self.proc.stderr.read()))
        self.port = int(line.strip().rstrip("/").rsplit(":", 1)[1])

    def request(self, method, path, body=None, headers=None, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.stdout.close()
        self.proc.stderr.close()


class Serve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sinsr_serve_")
        # One worker at one thread; no upload waits (--max-queue 0): a second one at once is a 503.
        cls.server = Server("-j", "1", "--workers", "1", "--max-queue", "0", "--max-body", "1",
                            "--max-pixels", "40000", "--read-timeout", "2", "--allow-self-ensemble")
        with open(SAMPLE, "rb") as f:
            cls.sample = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_upscale_equals_the_cli_bytes(self):
        out = os.path.join(self.tmp, "cli.png")
        subprocess.run([HOST_EXE, "infer", "-j", "1", "-q", "-i", SAMPLE, "-o", out], check=True)
        status, headers, body = self.server.request("POST", "/v1/upscale", self.sample)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers["Content-Type"], "image/png")
        with open(out, "rb") as f:
            self.assertEqual(body, f.read(), "serve and `infer -j 1` wrote different bytes")
        # Options in the query: another format, a final scale.
        out2 = os.path.join(self.tmp, "cli2.jpg")
        subprocess.run([HOST_EXE, "infer", "-j", "1", "-q", "--outscale", "2", "-i", SAMPLE, "-o", out2], check=True)
        status, headers, body = self.server.request("POST", "/v1/upscale?format=jpg&outscale=2", self.sample)
        self.assertEqual((status, headers["Content-Type"]), (200, "image/jpeg"), body[:300])
        with open(out2, "rb") as f:
            self.assertEqual(body, f.read())
        # The self-ensemble, as `infer --self-ensemble` (a pipeline of its own beside the plain one).
        out3 = os.path.join(self.tmp, "cli3.png")
        tiny = png(24, 20, seed=5)
        src3 = os.path.join(self.tmp, "tiny.png")
        with open(src3, "wb") as f:
            f.write(tiny)
        subprocess.run([HOST_EXE, "infer", "-j", "1", "-q", "--self-ensemble", "-i", src3, "-o", out3], check=True)
        status, _, body = self.server.request("POST", "/v1/upscale?self_ensemble=1", tiny)
        self.assertEqual(status, 200, body[:300])
        with open(out3, "rb") as f:
            self.assertEqual(body, f.read(), "serve and `infer --self-ensemble` wrote different bytes")
        self.assertNotEqual(body, self.server.request("POST", "/v1/upscale?self_ensemble=0", tiny)[2])

    def test_models_health_metrics_and_page(self):
        status, headers, body = self.server.request("GET", "/v1/models")
        self.assertEqual(status, 200)
        models = json.loads(body)["models"]
        self.assertTrue(any(m["default"] for m in models), models)
        for m in models:
            self.assertEqual(set(m), {"name", "scale", "input", "summary", "default", "strength", "self_ensemble"})
            self.assertTrue(m["self_ensemble"])  # this server runs with --allow-self-ensemble
        self.assertEqual(self.server.request("GET", "/healthz")[:1], (200,))
        status, headers, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        for name in ("sinsr_requests_total", "sinsr_request_seconds_bucket", "sinsr_queue_depth",
                     "sinsr_images_in_flight", "sinsr_peak_rss_bytes"):
            self.assertIn(name, text)
        status, headers, body = self.server.request("GET", "/")
        self.assertEqual((status, headers["Content-Type"]), (200, "text/html; charset=utf-8"))
        self.assertIn(b"<label for=\"model\">", body)

    def error(self, expected, method, path, body=None, headers=None):
        status, h, text = self.server.request(method, path, body, headers)
        self.assertEqual(status, expected, text[:300])
        self.assertEqual(h["Content-Type"], "application/json")
        return json.loads(text)["error"]

    def test_errors_are_json_with_the_cli_line(self):
        msg = self.error(400, "POST", "/v1/upscale", b"this is not an image at all")
        self.assertIn("upload: not a readable image", msg)
        self.assertNotIn("sinsr-serve-", msg)  # the private upload folder is not named
        self.assertIn("--max-pixels", self.error(413, "POST", "/v1/upscale", png(256, 256)))  # 65536 > 40000
        self.assertIn("--max-body", self.error(413, "POST", "/v1/upscale", b"\0" * (2 << 20)))
        self.assertIn("unknown option 'colour'", self.error(400, "POST", "/v1/upscale?colour=red", self.sample))
        self.assertIn("self_ensemble takes", self.error(400, "POST", "/v1/upscale?self_ensemble=yes", self.sample))
        self.assertIn("no model 'nope'", self.error(404, "POST", "/v1/upscale?model=nope", self.sample))
        self.error(405, "GET", "/v1/upscale")
        self.error(404, "GET", "/nowhere")
        # The server still serves.
        self.assertEqual(self.server.request("POST", "/v1/upscale", self.sample)[0], 200)

    def test_a_full_queue_is_a_503_with_retry_after(self):
        results = []
        slow = png(190, 190, seed=1)  # the one worker is busy for a while
        t = threading.Thread(target=lambda: results.append(self.server.request("POST", "/v1/upscale", slow)))
        t.start()
        deadline = time.time() + 30
        while time.time() < deadline:  # until the worker has taken it (/metrics says so)
            if b"sinsr_images_in_flight 1" in self.server.request("GET", "/metrics")[2]:
                break
            time.sleep(0.01)
        status, headers, body = self.server.request("POST", "/v1/upscale", self.sample)
        t.join()
        self.assertEqual(status, 503)
        self.assertEqual(headers["Retry-After"], "1")
        self.assertIn("busy", json.loads(body)["error"])
        self.assertEqual(results[0][0], 200)

    def test_many_seeds_are_served(self):
        # Each (seed, strength) is a pipeline of its own; past a few, the least recently used goes.
        tiny = png(16, 16, seed=3)
        for seed in range(12):
            status, _, body = self.server.request("POST", "/v1/upscale?seed=%d" % seed, tiny)
            self.assertEqual(status, 200, body[:300])

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            sock = conn.sock
            conn.request("POST", "/v1/upscale", self.sample)
            r2 = conn.getresponse()
            self.assertEqual(r2.status, 200)
            r2.read()
            self.assertIs(conn.sock, sock, "the connection was not kept")
        finally:
            conn.close()

    def test_a_slow_or_vanishing_client_costs_only_its_request(self):
        # Cut mid-body: the server answers the next request.
        s = socket.create_connection(("127.0.0.1", self.server.port))
        s.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + self.sample[:100])
        s.close()
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)
        # Too slow to send (--read-timeout 2): a 408, and no worker was held meanwhile.
        s = socket.create_connection(("127.0.0.1", self.server.port))
        s.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        self.assertEqual(self.server.request("POST", "/v1/upscale", self.sample)[0], 200)
        s.settimeout(10)
        reply = s.recv(4096)
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 408"), reply[:200])


class Token(unittest.TestCase):
    def test_a_token_is_required_and_compared(self):
        with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
            f.write("s3cret\n")
        server = Server("--token", f.name, "-j", "1")
        try:
            self.assertEqual(server.request("GET", "/v1/models")[0], 401)
            self.assertEqual(server.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong"})[0], 401)
            self.assertEqual(server.request("GET", "/v1/models", headers={"Authorization": "Bearer s3cret"})[0], 200)
            self.assertEqual(server.request("GET", "/healthz")[0], 200)  # probes need no token
            # Without --allow-self-ensemble the 8x request is refused, and the models say so.
            auth = {"Authorization": "Bearer s3cret"}
            models = json.loads(server.request("GET", "/v1/models", headers=auth)[2])["models"]
            self.assertFalse(any(m["self_ensemble"] for m in models))
            status, _, body = server.request("POST", "/v1/upscale?self_ensemble=1", png(16, 16), auth)
            self.assertEqual(status, 400)
            self.assertIn("--allow-self-ensemble", json.loads(body)["error"])
        finally:
            server.stop()
            os.unlink(f.name)


class Shutdown(unittest.TestCase):
    def test_sigterm_answers_accepted_uploads_then_exits_0(self):
        server = Server("-j", "1")
        results = []
        t = threading.Thread(target=lambda: results.append(server.request("POST", "/v1/upscale", png(160, 160))))
        t.start()
        time.sleep(0.5)  # the upload is in flight
        started = time.time()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=60)
        t.join()
        self.assertEqual(code, 0)
        self.assertEqual(results[0][0], 200, results[0][2][:300])
        self.assertLess(time.time() - started, 60)
        with self.assertRaises(OSError):  # nothing listens any more
            socket.create_connection(("127.0.0.1", server.port), timeout=2)
        server.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
