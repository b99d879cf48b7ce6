#!/usr/bin/env python3
"""Load and hostile figures for `sinsr-host serve` (issue 37), loopback only, bounded in requests:

1. C clients x R requests of a 64x64 image with the default model (then C x R/8 of a 256x256):
   throughput, p50/p95/p99 latency, statuses, server VmRSS after 100 requests and at the end;
   beside it, a CLI folder run of the same images (`sinsr-host infer -i DIR`) at the same thread
   count, for the images-per-second ratio.
2. The same with the queue forced full (--max-queue 0): 503s with Retry-After, no other 5xx.
3. Hostile uploads (tests/fuzz/regressions/image*, and the image seeds tests/fuzz/make_seeds.py
   writes) mixed into good requests: every hostile one a 4xx, every good one a 200; server
   VmRSS after hostile upload 100 and after upload 1000.
4. A slow-loris client (one byte a second) while good requests are served.

Usage: tools/load_test.py [--host-exe build/bin/sinsr-host] [--clients 8] [--requests 200]
                          [--threads 0] [--seeds DIR] [--quick]
Prints a table per phase; the exit status is non-zero when a promise of the issue does not hold.
"""
import argparse
import glob
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fuzz"))
from hostile_files import png_rgb as png  # noqa: E402


def vm_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Server:
    def __init__(self, exe, *args):
        self.proc = subprocess.Popen([exe, "serve", "--port", "0", "-q", *args], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise SystemExit("serve did not start: %r" % line)
        self.port = int(line.strip().rstrip("/").rsplit(":", 1)[1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def post(port, body, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    try:
        conn.request("POST", "/v1/upscale", body)
        r = conn.getresponse()
        r.read()
        return r.status, time.perf_counter() - t0, dict(r.getheaders())
    except (ConnectionError, OSError, http.client.HTTPException):
        return -1, time.perf_counter() - t0, {}
    finally:
        if own:
            conn.close()


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else float("nan")


def load(server, images, clients, requests, rss_at=None):
    """clients threads, each `requests` uploads on one keep-alive connection; returns stats."""
    statuses, latencies, lock = {}, [], threading.Lock()
    done = [0]
    rss = {}

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        for i in range(requests):
            status, seconds, _ = post(server.port, images[(k * requests + i) % len(images)], conn)
            if status == -1:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(seconds)
                done[0] += 1
                if rss_at and done[0] in rss_at:
                    rss[done[0]] = vm_rss_mb(server.proc.pid)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"wall": wall, "statuses": statuses, "latencies": latencies, "rss": rss,
            "per_s": statuses.get(200, 0) / wall}


def show(title, r):
    lat = r["latencies"]
    print("%s: %d requests in %.1f s, %.2f images/s; latency p50 %.3f s, p95 %.3f s, p99 %.3f s; statuses %s"
          % (title, len(lat), r["wall"], r["per_s"], percentile(lat, 50), percentile(lat, 95), percentile(lat, 99),
             dict(sorted(r["statuses"].items()))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host-exe", default=os.path.join(ROOT, "build", "bin", "sinsr-host"))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0, help="serve -j and infer -j (0: every core)")
    ap.add_argument("--seeds", help="tests/fuzz/make_seeds.py output folder (default: made in a temporary folder)")
    ap.add_argument("--quick", action="store_true", help="a tenth of the requests (a smoke run)")
    a = ap.parse_args()
    if a.quick:
        a.requests = max(13, a.requests // 10)
    cores = len(os.sched_getaffinity(0))
    threads = a.threads or cores
    ok = True
    tmp = tempfile.mkdtemp(prefix="sinsr_load_")
    small = [png(64, 64, s) for s in range(16)]

    # The CLI's rate on the same images (a folder run at the same thread count, start-up included,
    # as a user's run pays it) and the server's, alternating in rounds: medians and spread.
    folder = os.path.join(tmp, "in")
    os.makedirs(folder)
    n_cli = 64 if not a.quick else 16
    for i in range(n_cli):
        with open(os.path.join(folder, "%03d.png" % i), "wb") as f:
            f.write(small[i % len(small)])

    def cli_rate():
        t0 = time.perf_counter()
        subprocess.run([a.host_exe, "infer", "-q", "-j", str(threads), "-i", folder, "-o", os.path.join(tmp, "out")],
                       check=True)
        return n_cli / (time.perf_counter() - t0)

    rounds = 8
    per_round = max(1, a.requests // rounds)
    server = Server(a.host_exe, "-j", str(threads), "--workers", "1", "--max-queue", str(4 * a.clients))
    try:
        rss_start = vm_rss_mb(server.proc.pid)
        cli_rates, serve_rates, statuses, latencies, rss100 = [], [], {}, [], None
        wall = 0.0
        for k in range(rounds):
            cli_rates.append(cli_rate())
            r = load(server, small, a.clients, per_round, rss_at={100} if k == 0 else None)
            serve_rates.append(r["per_s"])
            wall += r["wall"]
            latencies += r["latencies"]
            for st, n in r["statuses"].items():
                statuses[st] = statuses.get(st, 0) + n
            if k == 0:
                rss100 = r["rss"].get(100, vm_rss_mb(server.proc.pid))
        rss_end = vm_rss_mb(server.proc.pid)
        total = rounds * a.clients * per_round
        show("serve, %d clients x %d (%d rounds of %d), 64x64" % (a.clients, rounds * per_round, rounds, per_round),
             {"wall": wall, "statuses": statuses, "latencies": latencies, "per_s": statuses.get(200, 0) / wall})
        med = statistics.median
        print("  images/s, alternating rounds: serve median %.2f (%.2f-%.2f), CLI folder run (%d images, -j %d) "
              "median %.2f (%.2f-%.2f)" % (med(serve_rates), min(serve_rates), max(serve_rates), n_cli, threads,
                                          med(cli_rates), min(cli_rates), max(cli_rates)))
        ratio = med(serve_rates) / med(cli_rates)
        print("  throughput / CLI folder run: %.2f" % ratio)
        print("  server VmRSS: %.0f MB at start, %.0f MB after 100 requests, %.0f MB after %d"
              % (rss_start, rss100, rss_end, total))
        five = sum(n for st, n in statuses.items() if st >= 500 or st < 0)
        ok &= five == 0 and statuses.get(200, 0) == total and rss_end - rss100 <= 50
        if ratio < 0.9:
            print("  below 0.9x the CLI's rate")
            ok = False
        big = [png(256, 256, s) for s in range(4)]
        r = load(server, big, a.clients, max(2, a.requests // 8))
        show("serve, %d clients x %d, 256x256" % (a.clients, max(2, a.requests // 8)), r)
        ok &= all(s == 200 for s in r["statuses"])

        # Hostile uploads mixed with good ones: the regression inputs (each once found a bug) and
        # a few broken files must be refused (4xx); the fuzz seeds (some are valid images) must
        # never be a 5xx or a dropped connection.
        refused = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ROOT, "tests/fuzz/regressions/image*/*")))]
        refused += [b"", b"GIF89a" + b"\xff" * 50, b"\x89PNG\r\n\x1a\n" + b"\0" * 40, png(64, 64, 1)[:200]]
        seeds = a.seeds
        if not seeds:  # the fuzz seeds, made now (make_seeds.py needs no torch)
            seeds = os.path.join(tmp, "seeds")
            subprocess.run([sys.executable, os.path.join(ROOT, "tests", "fuzz", "make_seeds.py"), seeds], check=True,
                           stdout=subprocess.DEVNULL)
        seed_files = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(seeds, "image*", "*")))]
        uploads = [(b, True) for b in refused] + [(b, False) for b in seed_files]
        n_hostile = 1000 if not a.quick else 120
        statuses_bad, statuses_seed, statuses_good, rss_bad = {}, {}, {}, {}
        for i in range(n_hostile):
            body, must_refuse = uploads[i % len(uploads)]
            s, _, _ = post(server.port, body)
            into = statuses_bad if must_refuse else statuses_seed
            into[s] = into.get(s, 0) + 1
            if i + 1 in (100, n_hostile):
                rss_bad[i + 1] = vm_rss_mb(server.proc.pid)
            if i % 10 == 0:
                g, _, _ = post(server.port, small[i % len(small)])
                statuses_good[g] = statuses_good.get(g, 0) + 1
        print("hostile uploads: %d (%d known-bad files, %d fuzz seeds, in turn): known-bad %s, seeds %s; good ones "
              "beside them %s; VmRSS %.0f MB after 100, %.0f MB after %d"
              % (n_hostile, len(refused), len(seed_files), dict(sorted(statuses_bad.items())),
                 dict(sorted(statuses_seed.items())), dict(sorted(statuses_good.items())), rss_bad[100],
                 rss_bad[n_hostile], n_hostile))
        ok &= all(400 <= s < 500 for s in statuses_bad) and all(0 < s < 500 for s in statuses_seed)
        ok &= set(statuses_good) == {200} and rss_bad[n_hostile] - rss_bad[100] <= 10

        # Slow loris: one byte a second; good requests meanwhile.
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"P")
        stop = threading.Event()

        def drip():
            for ch in b"OST /v1/upscale HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n":
                if stop.wait(1.0):
                    break
                try:
                    s.sendall(bytes([ch]))
                except OSError:
                    break
        t = threading.Thread(target=drip)
        t.start()
        r = load(server, small, 2, 5)
        stop.set()
        t.join()
        s.close()
        show("beside a slow-loris client", r)
        ok &= set(r["statuses"]) == {200}
    finally:
        server.stop()

    # The queue forced full: one worker, no waiting room.
    server = Server(a.host_exe, "-j", str(threads), "--workers", "1", "--max-queue", "0")
    try:
        r = load(server, small, a.clients, max(5, a.requests // 4))
        show("queue forced full (--max-queue 0)", r)
        other_5xx = sum(n for st, n in r["statuses"].items() if (st >= 500 and st != 503) or st < 0)
        print("  503 (busy, Retry-After): %d, other 5xx or failures: %d" % (r["statuses"].get(503, 0), other_5xx))
        ok &= other_5xx == 0 and r["statuses"].get(503, 0) > 0
    finally:
        server.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    print("load_test: %s" % ("every promise held" if ok else "A PROMISE DID NOT HOLD"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
