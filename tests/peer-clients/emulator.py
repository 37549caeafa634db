"""Starts `cinder-evs-csi emulator` on free ports in a temporary state directory and reads
its endpoints and credentials from the banner it prints (shared by the peer-client scripts)."""
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request


class Emulator:
    def __init__(self, binary, latency="500ms"):
        self.dir = tempfile.TemporaryDirectory(prefix="peer-clients-")
        args = [binary, "emulator", "--listen", "127.0.0.1:0", "--metadata-address", "off",
                "--huawei-address", "127.0.0.1:0", "--state-dir", self.dir.name, "--latency", latency]
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, env=env)
        lines = []
        seen_demo = False
        # The banner ends with the users; the demo user's AK/SK line is the last one needed.
        while len(lines) < 80:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("the emulator exited before its banner: %r" % lines)
            lines.append(line.rstrip("\n"))
            seen_demo = seen_demo or line.startswith("  user demo ")
            if seen_demo and "HUAWEICLOUD_SDK_AK" in line:
                break
        self.banner = "\n".join(lines)
        self.auth_url = re.search(r"OS_AUTH_URL=(\S+)", self.banner).group(1)
        self.base_url = self.auth_url.rsplit("/identity", 1)[0]
        self.region = re.search(r"OS_REGION_NAME=(\S+)", self.banner).group(1)
        self.urls = {m.group(1): m.group(2) for m in re.finditer(r"^  (evs|ecs|iam)\s+(http://\S+)\s+\(own listener", self.banner, re.M)}
        users = {}
        for m in re.finditer(r"user (\S+) / password (\S+) \(domain (\S+)\), project (\S+) \((\S+)\)", self.banner):
            users[m.group(1)] = {"password": m.group(2), "domain": m.group(3), "project": m.group(4), "project_id": m.group(5)}
        self.users = users
        keys = re.search(r"user demo .*?\n(?:.*\n)*?\s+Huawei AK/SK: HUAWEICLOUD_SDK_AK=(\S+) HUAWEICLOUD_SDK_SK=(\S+)", self.banner)
        self.ak, self.sk = (keys.group(1), keys.group(2)) if keys else (None, None)

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + "/_emulator" + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read() or b"null")

    def add_server(self, name, project="demo"):
        return self.admin("POST", "/servers", {"name": name, "project": project})["server"]["id"]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.dir.cleanup()


class Checks:
    """Named checks; every failure is reported, and the exit status says whether any failed."""

    def __init__(self, tier):
        self.tier, self.passed, self.failed = tier, [], []

    def run(self, name, fn):
        try:
            fn()
            self.passed.append(name)
            print("ok     %s" % name, flush=True)
        except Exception as e:  # noqa: BLE001 - a peer client's every failure is the report
            self.failed.append((name, e))
            print("FAILED %s: %s: %s" % (name, type(e).__name__, e), flush=True)

    def finish(self):
        print("%s: %d passed, %d failed" % (self.tier, len(self.passed), len(self.failed)), flush=True)
        return 1 if self.failed or not self.passed else 0
