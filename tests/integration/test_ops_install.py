"""deploy/install.sh in a staged root (--destdir), like a package build:
it installs the binaries, the system user (systemd-sysusers --root), the
units, configs with a fresh API token, the dashboard and /var/lib/streamscale;
a second run changes nothing an admin owns (idempotent); --prefix moves the
binaries and the units follow; the installed coordinator serves the
installed dashboard; `systemd-analyze verify` passes on the installed units
and `systemd-analyze security` scores them (worker <= 2.0); --uninstall
keeps config, data and the user, --uninstall --purge leaves the root empty.
Also: every metric the Grafana dashboard and the alert rules in
docs/OPERATIONS.md query exists in a live /metrics."""
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import BUILD, SOURCE, Harness, free_port, gen_clip, http_json, main, wait_until  # noqa: E402

INSTALL = os.path.join(SOURCE, "deploy", "install.sh")
UNITS = ("streamscale-coordinator.service", "streamscale-worker.service")


def run_install(*args):
    r = subprocess.run([INSTALL, "--build-dir", BUILD, "--no-build"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, "install.sh %s failed:\n%s" % (" ".join(args), r.stdout)
    return r.stdout


def tree(root):
    """relative path -> (mode, sha256 or None for folders)"""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            h = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (stat.S_IMODE(st.st_mode), h)
    return out


def security_score(unit_path, root):
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--root=" + root,
                        os.path.basename(unit_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout[-2000:]
    return float(m.group(1))


def metric_names(text):
    names = set(re.findall(r"\b((?:streamscale|process)_[a-z0-9_]+)", text))
    base = set()
    for n in names:
        for suffix in ("_bucket", "_sum", "_count"):
            if n.endswith(suffix) and not n.endswith("_total"):
                n = n[:-len(suffix)]
        base.add(n)
    return base


def test_ops_install():
    for b in ("streamscale", "streamscale-coordinator", "streamscale-worker"):
        assert os.access(os.path.join(BUILD, "bin", b), os.X_OK), "build first: " + b
    tmp = tempfile.mkdtemp(prefix="ss-install-")
    try:
        r = subprocess.run([INSTALL, "--help"], stdout=subprocess.PIPE, text=True)
        assert r.returncode == 0 and "--uninstall" in r.stdout and "--destdir" in r.stdout, r.stdout

        # ---- install into a staged root
        root = os.path.join(tmp, "root")
        run_install("--destdir", root)
        p = lambda *a: os.path.join(root, *a)  # noqa: E731
        for b in ("streamscale", "streamscale-coordinator", "streamscale-worker"):
            assert os.stat(p("usr/local/bin", b)).st_mode & 0o777 == 0o755, b
        for u in UNITS:
            with open(p("etc/systemd/system", u)) as f:
                text = f.read()
            assert "ExecStart=/usr/local/bin/%s -c /etc/streamscale/" % u.split(".")[0] in text, text
            assert "User=streamscale" in text
        with open(p("etc/passwd")) as f:
            pw = [ln for ln in f if ln.startswith("streamscale:")]
        assert len(pw) == 1 and pw[0].rstrip().endswith(":/var/lib/streamscale:/usr/sbin/nologin"), pw
        uid = int(pw[0].split(":")[2])
        for d in ("var/lib/streamscale", "var/lib/streamscale/scratch", "var/lib/streamscale/out",
                  "var/lib/streamscale/uploads"):
            st = os.stat(p(d))
            assert stat.S_IMODE(st.st_mode) == 0o750, (d, oct(st.st_mode))
            if os.geteuid() == 0:   # chown needs root; a staged install as a user leaves them ours
                assert st.st_uid == uid, (d, st.st_uid, uid)
        for c in ("coordinator.conf", "worker.conf", "coordinator.env", "worker.env"):
            st = os.stat(p("etc/streamscale", c))
            assert stat.S_IMODE(st.st_mode) == 0o640, (c, oct(st.st_mode))
        with open(p("etc/streamscale/coordinator.env")) as f:
            token = re.search(r"^STREAMSCALE_API_TOKEN=(\S{16,})$", f.read(), re.M).group(1)
        with open(p("etc/streamscale/coordinator.conf")) as f:
            assert "web_dir = /usr/local/share/streamscale/web" in f.read()
        for f in ("web/index.html", "web/app.js", "web/vendor/hls.min.js", "web/vendor/hls.js.LICENSE",
                  "grafana-dashboard.json", "examples/redis.conf", "examples/r2.conf.example"):
            assert os.path.isfile(p("usr/local/share/streamscale", f)), f
        assert os.path.isfile(p("usr/local/share/doc/streamscale/OPERATIONS.md"))
        assert os.path.isfile(p("usr/lib/sysusers.d/streamscale.conf"))
        assert os.path.isfile(p("usr/lib/tmpfiles.d/streamscale.conf"))

        # ---- idempotent: a second run keeps what the admin owns
        with open(p("etc/streamscale/worker.conf"), "a") as f:
            f.write("slots = 3   # edited by the admin\n")
        before = tree(root)
        out = run_install("--destdir", root)
        assert "new random API token" not in out, out
        after = tree(root)
        assert set(before) == set(after), set(before) ^ set(after)
        changed = [k for k in before if before[k] != after[k]]
        assert not changed, changed
        with open(p("etc/passwd")) as f:
            assert sum(1 for ln in f if ln.startswith("streamscale:")) == 1

        # ---- systemd: the installed units verify and score well
        vdir = os.path.join(tmp, "verify")
        os.makedirs(vdir)
        for u in UNITS:   # the same unit, pointing at the staged binaries
            with open(p("etc/systemd/system", u)) as f:
                text = f.read().replace("ExecStart=/usr/local/bin/", "ExecStart=%s/usr/local/bin/" % root)
            with open(os.path.join(vdir, u), "w") as f:
                f.write(text)
        r = subprocess.run(["systemd-analyze", "verify"] + [os.path.join(vdir, u) for u in UNITS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0 and not r.stdout.strip(), "systemd-analyze verify:\n" + r.stdout
        scores = {u: security_score(p("etc/systemd/system", u), root) for u in UNITS}
        print("systemd-analyze security: %s" % ", ".join("%s %.1f" % kv for kv in scores.items()))
        assert scores["streamscale-worker.service"] <= 2.0, scores
        assert scores["streamscale-coordinator.service"] <= 2.0, scores

        # ---- --prefix: binaries elsewhere, the units and configs follow
        root2 = os.path.join(tmp, "root2")
        run_install("--destdir", root2, "--prefix", "/opt/streamscale")
        assert os.access(os.path.join(root2, "opt/streamscale/bin/streamscale-worker"), os.X_OK)
        with open(os.path.join(root2, "etc/systemd/system/streamscale-worker.service")) as f:
            assert "ExecStart=/opt/streamscale/bin/streamscale-worker -c" in f.read()
        with open(os.path.join(root2, "etc/streamscale/coordinator.conf")) as f:
            assert "web_dir = /opt/streamscale/share/streamscale/web" in f.read()
        assert not os.path.exists(os.path.join(root2, "usr/local/bin"))

        # ---- the installed coordinator serves the installed dashboard, and
        # the dashboards' and alerts' metrics all exist
        with Harness("ops-install") as h:
            rport = h.redis()
            port = free_port()
            h.start("coordinator", [p("usr/local/bin/streamscale-coordinator"), "-c",
                                    p("etc/streamscale/coordinator.conf"),
                                    "--listen", "127.0.0.1:%d" % port,
                                    "--redis", "redis://127.0.0.1:%d/0" % rport,
                                    "--web_dir", p("usr/local/share/streamscale/web"),
                                    "--output_dir", p("var/lib/streamscale/out"),
                                    "--upload_dir", p("var/lib/streamscale/uploads")],
                    env={"STREAMSCALE_API_TOKEN": token})
            url = "http://127.0.0.1:%d" % port
            wait_until(lambda: http_json("GET", url + "/healthz")[0] == 200, 20, "installed coordinator")
            st, html = http_json("GET", url + "/")
            assert st == 200 and "app.js" in html, (st, html[:200])
            assert http_json("GET", url + "/v1/queue", token=token)[0] == 200
            h.queue_worker("qw", rport)
            wait_until(lambda: "streamscale_worker_cpu_load_ratio{" in http_json("GET", url + "/metrics")[1],
                       20, "a worker in /metrics")
            st, text = http_json("GET", url + "/metrics")
            families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
            with open(os.path.join(SOURCE, "deploy", "grafana-dashboard.json")) as f:
                dash = json.load(f)
            exprs = [t["expr"] for pnl in dash["panels"] for t in pnl.get("targets", [])]
            assert len(exprs) >= 20, len(exprs)
            missing = metric_names("\n".join(exprs)) - families
            assert not missing, "the Grafana dashboard queries unknown metrics: %s" % sorted(missing)
            with open(os.path.join(SOURCE, "docs", "OPERATIONS.md")) as f:
                ops = f.read()
            rules = "\n".join(re.findall(r"```yaml\n(.*?)```", ops, re.S))
            assert "alert:" in rules, "no alert rules found in docs/OPERATIONS.md"
            missing = metric_names(rules) - families
            assert not missing, "alerts in docs/OPERATIONS.md query unknown metrics: %s" % sorted(missing)

            # the README's first line on the installed system: a file in the
            # user's folder (outside the workers' file_roots) goes through the
            # coordinator's upload folder
            h.stop("qw")
            wconf = h.path("worker.conf")   # the installed one, less the test's admin edit above
            with open(p("etc/streamscale/worker.conf")) as f, open(wconf, "w") as o:
                o.writelines(ln for ln in f if "edited by the admin" not in ln)
            h.start("worker", [p("usr/local/bin/streamscale-worker"), "-c", wconf,
                               "--redis", "redis://127.0.0.1:%d/0" % rport, "--cpu_threshold", "100",
                               "--threads", "1", "--scratch_dir", p("var/lib/streamscale/scratch"),
                               "--storage", "file://%s/" % p("var/lib/streamscale/out"),
                               "--file_roots", p("var/lib/streamscale")])
            wait_until(lambda: "worker ready" in h.log_text("worker") or h.assert_alive(), 30,
                       "installed worker")
            home = h.path("home")
            os.makedirs(home)
            gen_clip(os.path.join(home, "talk.mp4"), seconds=1, size="320x240")
            env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCALE_")}
            env.update(STREAMSCALE_API=url, STREAMSCALE_API_TOKEN=token)
            r = subprocess.run([p("usr/local/bin/streamscale"), "submit", "talk.mp4", "--wait", "--json",
                                "--ladder", "240", "--preset", "ultrafast"], cwd=home, env=env,
                               capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, (r.returncode, r.stderr, h.log_text("worker")[-2000:])
            job = json.loads(r.stdout)
            src = job["spec"]["source"]
            assert src.startswith("file://" + p("var/lib/streamscale/uploads") + "/"), src
            assert os.path.isfile(p("var/lib/streamscale/out", job["id"], "master.m3u8"))
            assert not os.listdir(p("var/lib/streamscale/uploads", ".partial")), "partial upload left"

        # ---- uninstall: config, data and the user stay; --purge removes them
        run_install("--destdir", root, "--uninstall")
        for gone in ("usr/local/bin/streamscale-worker", "etc/systemd/system/streamscale-worker.service",
                     "usr/local/share/streamscale", "usr/local/share/doc/streamscale"):
            assert not os.path.exists(p(gone)), gone
        for kept in ("etc/streamscale/coordinator.env", "var/lib/streamscale/out", "etc/passwd"):
            assert os.path.exists(p(kept)), kept
        run_install("--destdir", root, "--uninstall", "--purge")
        left = sorted(tree(root)) if os.path.exists(root) else []
        assert left == [], "left behind after --purge: %s" % left
        run_install("--destdir", root, "--uninstall", "--purge")   # again: nothing to do, no error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(test_ops_install)
