"""Drives the keyrotd demo: starts the local Mistral-compatible server and
`keyrotd run` with a demo configuration, narrates what keyrotd does from its log,
and checks after every step that the consumer's keys are accepted by the server.

Usage: python3 scripts/demo.py PATH-TO-KEYROTD  (scripts/demo builds it and calls this)
"""
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "demo")
KEYS = ["alpha", "beta"]
ROTATIONS = 2            # full rotations of each key after its first key
ROTATE_EVERY, OVERLAP = 40, 15
TIMEOUT = 240            # seconds; the demo normally finishes in about 100

HOOK = """#!/bin/sh
# Demo consumer hook: keeps one line per key in demo/consumer.env, written
# atomically with mode 0600. The secret arrives on stdin, never in argv/env.
set -eu
[ "$KEYROTD_EVENT" = deploy ] || exit 0
IFS= read -r secret
file="{demo}/consumer.env"
var="$(echo "$KEYROTD_KEY" | tr a-z- A-Z_)_API_KEY"
exec 9>"$file.lock"
flock 9
umask 077
tmp="$file.tmp.$$"
{{ grep -v "^$var=" "$file" 2>/dev/null || true; printf '%s=%s\\n' "$var" "$secret"; }} >"$tmp"
sync "$tmp"
mv -f "$tmp" "$file"
echo "wrote $var to consumer.env"
"""


def say(text):
    print(time.strftime("%H:%M:%S"), text, flush=True)


class Demo:
    def __init__(self, keyrotd):
        self.keyrotd = keyrotd
        self.server = None
        self.daemon = None
        self.port = None
        self.completed = {key: 0 for key in KEYS}
        self.current = {}
        self.expired = False

    def timed_out(self):
        """Stops a demo that hangs; the narration loop then reports it."""
        if self.daemon and self.daemon.poll() is None:
            self.expired = True
            self.daemon.terminate()

    def prepare(self):
        shutil.rmtree(DEMO, ignore_errors=True)
        os.makedirs(os.path.join(DEMO, "hooks"))
        os.chmod(DEMO, 0o700)
        with open(os.open(os.path.join(DEMO, "admin-key"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("demo-admin-" + secrets.token_urlsafe(24) + "\n")
        hook = os.path.join(DEMO, "hooks", "write-consumer-env")
        with open(hook, "w") as f:
            f.write(HOOK.format(demo=DEMO))
        os.chmod(hook, 0o755)

    def start_server(self):
        port_file = os.path.join(DEMO, "server.port")
        self.server = subprocess.Popen(
            [os.path.join(ROOT, "scripts", "mistral-server"), "--port", "0", "--port-file", port_file,
             "--log-file", os.path.join(DEMO, "requests.jsonl"), "--admin-key-file", os.path.join(DEMO, "admin-key")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(DEMO, "server.log"), "w"), start_new_session=True)
        for _ in range(100):
            if os.path.exists(port_file):
                self.port = int(open(port_file).read().strip())
                return
            if self.server.poll() is not None:
                raise SystemExit("demo: the local server did not start; see demo/server.log")
            time.sleep(0.1)
        raise SystemExit("demo: the local server did not report its port")

    def write_config(self):
        sections = [f"""[daemon]
state_file = "{DEMO}/state/state.json"
control_socket = "{DEMO}/control.sock"

[defaults]
rotate_every = "{ROTATE_EVERY}s"
overlap = "{OVERLAP}s"
jitter = "0"
hook_timeout = "10s"
retry_initial = "2s"
retry_max = "10s"

[providers.mistral]
type = "mistral"
base_url = "http://127.0.0.1:{self.port}"
admin_key_file = "{DEMO}/admin-key"
requests_per_minute = 600
"""]
        for key in KEYS:
            sections.append(f"""[keys.{key}]
provider = "mistral"
workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
hooks = ["{DEMO}/hooks/write-consumer-env"]
""")
        with open(os.path.join(DEMO, "keyrotd.toml"), "w") as f:
            f.write("\n".join(sections))

    def consumer_keys(self):
        keys = {}
        try:
            with open(os.path.join(DEMO, "consumer.env")) as f:
                for line in f:
                    name, _, value = line.strip().partition("=")
                    keys[name] = value
        except FileNotFoundError:
            pass
        return keys

    def accepted(self, secret):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/models",
                                         headers={"Authorization": "Bearer " + secret})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except urllib.error.HTTPError:
            return False

    def check_consumer(self):
        keys = self.consumer_keys()
        verdicts = []
        for name, secret in sorted(keys.items()):
            ok = self.accepted(secret)
            verdicts.append(f"{name} {'accepted' if ok else 'REJECTED'}")
            if not ok:
                raise SystemExit(f"demo: the consumer's {name} is rejected by the server")
        return ", ".join(verdicts)

    def narrate(self, line):
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        fields = {k: v.strip('"') for k, v in fields.items()}
        event, key = fields.get("event"), fields.get("key")
        new, old, gen = fields.get("key_id", "?"), fields.get("old_key_id"), fields.get("generation", "?")
        short = lambda k: (k or "?")[:8]
        if event == "rotation-started":
            say(f"{key}: rotation to generation {gen} starts" + (f" (replacing key {short(old)})" if old else " (no key yet)"))
        elif event == "key-created":
            # The daemon logs the provider name it gave: keyrotd/<instance>/<key>/g<n>/<id>.
            named = re.search(r"created (keyrotd/\S+)", line)
            say(f"{key}: created key {short(new)} at the provider as "
                + (named.group(1) if named else f"keyrotd/…/{key}/g{gen}/…"))
        elif event == "key-verified":
            say(f"{key}: the new key works (GET /v1/models answered 200)")
        elif event == "deployed":
            self.current[key] = new
            say(f"{key}: deploy hook ran; consumer.env holds key {short(new)} -> {self.check_consumer()}")
        elif event == "overlap-started" and "revoke" in line:
            say(f"{key}: revoke: old key {short(old)} goes now, no overlap")
        elif event == "overlap-started":
            say(f"{key}: old key {short(old)} stays valid {OVERLAP}s more, for consumers still using it")
        elif event == "key-retired":
            say(f"{key}: overlap over; deleted old key {short(old)} -> {self.check_consumer()}")
        elif event == "rotation-completed":
            due = re.search(r"next rotation (\S+)", line)
            when = ""
            if due:
                stamp = dt.datetime.fromisoformat(due.group(1).replace("Z", "+00:00"))
                when = f"; next at {stamp.astimezone().strftime('%H:%M:%S')}"
            if int(gen) > 1:
                self.completed[key] += 1
                of = f" of {ROTATIONS}" if self.completed[key] <= ROTATIONS else ""
                say(f"{key}: rotation {self.completed[key]}{of} complete{when}")
            else:
                say(f"{key}: first key in place{when}")
        elif event in ("step-failed", "blocked"):
            say(f"{key}: {fields.get('error', 'a step failed')}; keyrotd retries (the old key stays valid)")
        elif line.startswith(("error", "critical")):
            say("keyrotd: " + line)

    def run(self):
        self.prepare()
        self.start_server()
        say(f"local Mistral-compatible server on 127.0.0.1:{self.port} (requests logged to demo/requests.jsonl)")
        self.write_config()
        say(f"keyrotd manages {', '.join(KEYS)}: a new key every {ROTATE_EVERY}s, old ones kept {OVERLAP}s, "
            f"consumer file demo/consumer.env")
        log = open(os.path.join(DEMO, "keyrotd.log"), "w")
        # Own sessions: Ctrl-C reaches the demo, which then stops both children itself.
        self.daemon = subprocess.Popen([self.keyrotd, "run", "--config", os.path.join(DEMO, "keyrotd.toml")],
                                       stdout=log, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                       env={"PATH": os.environ["PATH"], "SWIFT_BACKTRACE": "enable=no"})
        watchdog = threading.Timer(TIMEOUT, self.timed_out)
        watchdog.daemon = True
        watchdog.start()
        rotated = threading.Event()
        reader = threading.Thread(target=self.follow, args=(log, rotated), daemon=True)
        reader.start()
        while not rotated.wait(0.2):
            if self.expired:
                raise SystemExit("demo: keyrotd did not finish the rotations in time; see demo/keyrotd.log")
            if self.daemon.poll() is not None:
                raise SystemExit(f"demo: keyrotd exited with status {self.daemon.returncode}; see demo/keyrotd.log")
        say(f"every key rotated {ROTATIONS} times")
        self.operator()
        say("stopping keyrotd (SIGTERM)")
        self.daemon.send_signal(signal.SIGTERM)
        status = self.daemon.wait(timeout=20)
        reader.join(timeout=5)
        if status != 0:
            raise SystemExit(f"demo: keyrotd exited with status {status}")
        created = sum(1 for line in open(os.path.join(DEMO, "requests.jsonl"))
                      if json.loads(line).get("method") == "POST" and json.loads(line).get("status") == 200)
        say(f"done: {created} keys created, {len(KEYS)} live, consumer keys: {self.check_consumer()}. "
            f"Try: {os.path.relpath(self.keyrotd, ROOT)} status --config demo/keyrotd.toml")

    def follow(self, log, rotated):
        """Copies keyrotd's log to demo/keyrotd.log and narrates it (a thread)."""
        for line in self.daemon.stderr:
            log.write(line)
            log.flush()
            self.narrate(line.rstrip("\n"))
            if all(count >= ROTATIONS for count in self.completed.values()):
                rotated.set()

    def cli(self, *arguments):
        command = [self.keyrotd, *arguments, "--config", os.path.join(DEMO, "keyrotd.toml")]
        say("$ keyrotd " + " ".join(arguments))
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        for line in (result.stdout + result.stderr).splitlines():
            print("    " + line, flush=True)
        if result.returncode != 0:
            raise SystemExit(f"demo: keyrotd {arguments[0]} exited with status {result.returncode}")

    def operator(self):
        """What an operator does: revoke a key believed leaked, then audit."""
        say("an operator believes alpha's key leaked: revoke deletes it right after the new one is deployed, no overlap")
        self.cli("revoke", "alpha", "--wait", "--timeout", "60s")
        say(f"consumer keys after the revoke: {self.check_consumer()}")
        say("and audits every key the provider has (via the daemon's control socket):")
        self.cli("audit")

    def stop(self):
        for process in (self.daemon, self.server):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


def main():
    demo = Demo(os.path.abspath(sys.argv[1]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        demo.run()
    except KeyboardInterrupt:
        say("interrupted; stopping keyrotd and the server")
        return 130
    finally:
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
