"""Drives the gateway demo (scripts/demo-gateway builds the binaries and calls this).

Starts the local Mistral-compatible server, keyrotd-gateway with two roles and two
clients, and keyrotd delivering the upstream keys through the shipped gateway hook;
then shows what each client may do, a refused model, a streamed answer, and two
rotations (one emergency revoke) that a client calling all along never notices.

Usage: python3 scripts/demo_gateway.py PATH-TO-KEYROTD PATH-TO-KEYROTD-GATEWAY
"""
import json
import os
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
DEMO = os.path.join(ROOT, "demo", "gateway")
TIMEOUT = 150


def say(text=""):
    print(time.strftime("%H:%M:%S"), text, flush=True)


class Demo:
    def __init__(self, keyrotd, gateway):
        self.keyrotd = os.path.abspath(keyrotd)
        self.gateway = os.path.abspath(gateway)
        self.processes = []
        self.tokens = {}
        self.port = None
        self.gateway_port = None

    # --- set-up -------------------------------------------------------------------

    def write(self, name, text, mode=0o600):
        path = os.path.join(DEMO, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def spawn(self, name, argv):
        log = open(os.path.join(DEMO, name + ".log"), "w")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def start_server(self):
        self.write("admin-key", "demo-admin-" + secrets.token_urlsafe(24) + "\n")
        port_file = os.path.join(DEMO, "server.port")
        self.spawn("server", [os.path.join(ROOT, "scripts", "mistral-server"), "--port", "0", "--port-file", port_file,
                              "--admin-key-file", os.path.join(DEMO, "admin-key")])
        for _ in range(100):
            if os.path.exists(port_file):
                self.port = int(open(port_file).read().strip())
                # Answers take a moment, as a real model's do: 40 tokens a second.
                self.control("/_control/options", {"tokens_per_second": 40, "completion_tokens": 24})
                return
            time.sleep(0.1)
        raise SystemExit("demo-gateway: the local server did not start; see demo/gateway/server.log")

    def control(self, path, body):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def mint(self, client):
        out = subprocess.run([self.gateway, "token", client], capture_output=True, text=True, check=True).stdout
        lines = out.splitlines()
        self.tokens[client] = next(line for line in lines if line.startswith("krg_"))
        return next(line for line in lines if line.startswith("token_sha256"))

    def start_gateway(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.gateway_port = s.getsockname()[1]
        alice, bob = self.mint("alice"), self.mint("bob")
        config = self.write("gateway.toml", f"""[gateway]
listen = ["127.0.0.1:{self.gateway_port}"]
admin_socket = "{DEMO}/admin.sock"
admin_users = []
state_directory = "{DEMO}/gateway-state"
upstream = "http://127.0.0.1:{self.port}"
currency = "EUR"

[prices."mistral-small-latest"]
input = 0.1
output = 0.3

[prices."mistral-large-latest"]
input = 2.0
output = 6.0

# Analysts: the small model only, 600 requests a minute, 5 EUR a month.
[roles.analyst]
upstream_key = "dev-team"
models = ["mistral-small-latest"]
requests_per_minute = 600
monthly_budget = 5.0
alert_at = [50, 80, 95]
max_tokens = 256

# Seniors: every mistral-* model, spending the seniors' own key.
[roles.senior]
upstream_key = "seniors"
models = ["mistral-*"]
max_tokens = 1024

[clients.alice]
role = "analyst"
{alice}

[clients.bob]
role = "senior"
{bob}
""")
        self.spawn("gateway", [self.gateway, "run", "--config", config])
        for _ in range(300):
            if os.path.exists(os.path.join(DEMO, "admin.sock")):
                return
            time.sleep(0.1)
        raise SystemExit("demo-gateway: the gateway did not start; see demo/gateway/gateway.log")

    def start_keyrotd(self):
        shipped = open(os.path.join(ROOT, "scripts", "hooks", "gateway")).read()
        hook = "\n".join(
            f"SOCKET={DEMO}/admin.sock" if line.startswith("SOCKET=") else
            f"GATEWAY={self.gateway}" if line.startswith("GATEWAY=") else line
            for line in shipped.split("\n"))
        hook_path = self.write("hooks/gateway", hook, 0o755)
        keys = "".join(f"""
[keys.{name}]
provider = "mistral"
workspace = "7f1e0c3a-5d1b-4c52-9a3e-2b7d8e6f4a10"
user = "b52d9e10-3c4f-4e8a-8b1d-6a9f0c2e7d35"
hooks = ["{hook_path}"]
""" for name in ("dev-team", "seniors"))
        config = self.write("keyrotd.toml", f"""[daemon]
instance = "demo"
state_file = "{DEMO}/keyrotd-state/state.json"
control_socket = "{DEMO}/control.sock"

[defaults]
rotate_every = "1h"
overlap = "5s"
jitter = "0"
hook_timeout = "10s"

[providers.mistral]
type = "mistral"
base_url = "http://127.0.0.1:{self.port}"
admin_key_file = "{DEMO}/admin-key"
requests_per_minute = 600
{keys}""")
        self.keyrotd_config = config
        self.spawn("keyrotd", [self.keyrotd, "run", "--config", config])

    # --- the client side ----------------------------------------------------------

    def call(self, client, path, body=None, stream=False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.gateway_port}{path}", data=data, method="POST" if data else "GET",
            headers={"Authorization": "Bearer " + self.tokens[client], "Content-Type": "application/json"})
        try:
            response = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
        if stream:
            return response.status, response
        with response:
            return response.status, json.load(response)

    def status(self):
        out = subprocess.run([self.gateway, "status", "--json", "--socket", os.path.join(DEMO, "admin.sock")],
                             capture_output=True, text=True)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def generations(self):
        return {role["name"]: role.get("upstream_key_id") for role in self.status().get("roles", [])}

    # --- the story ----------------------------------------------------------------

    def run(self):
        shutil.rmtree(DEMO, ignore_errors=True)
        os.makedirs(DEMO, mode=0o700)
        say("Starting the local Mistral-compatible server, keyrotd-gateway and keyrotd.")
        self.start_server()
        self.start_gateway()
        self.start_keyrotd()
        deadline = time.time() + 60
        while time.time() < deadline and not all(self.generations().values() or [None]):
            time.sleep(0.3)
        keys = self.generations()
        if not all(keys.values()):
            raise SystemExit("demo-gateway: keyrotd did not deliver the keys; see demo/gateway/keyrotd.log")
        say(f"keyrotd created two provider keys and handed them to the gateway: {keys}")
        say("The clients hold gateway tokens only; neither ever sees a provider key.")
        say()

        status, models = self.call("alice", "/v1/models")
        say(f"alice (analyst) lists models: {[m['id'] for m in models['data']]}")
        status, models = self.call("bob", "/v1/models")
        say(f"bob (senior) lists models:    {[m['id'] for m in models['data']]}")
        chat = lambda model, text: {"model": model, "messages": [{"role": "user", "content": text}]}
        status, body = self.call("alice", "/v1/chat/completions", chat("mistral-large-latest", "hello"))
        say(f"alice asks mistral-large-latest: {status} {body['message']}")
        status, body = self.call("alice", "/v1/chat/completions", chat("mistral-small-latest", "summarise the quarter"))
        say(f"alice asks mistral-small-latest: {status}, {body['usage']['completion_tokens']} tokens: "
            f"\"{body['choices'][0]['message']['content'][:60]}...\"")
        say("bob streams an answer from mistral-large-latest:")
        body = chat("mistral-large-latest", "tell me how the gateway keeps keys away from clients")
        body["stream"] = True
        status, response = self.call("bob", "/v1/chat/completions", body, stream=True)
        words = []
        with response:
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    for choice in chunk.get("choices", []):
                        piece = choice.get("delta", {}).get("content") or ""
                        words.append(piece)
                        print(piece, end="", flush=True)
                    if chunk.get("usage"):
                        usage = chunk["usage"]
        print(flush=True)
        say(f"  ...the last chunk carried usage: {usage['prompt_tokens']} prompt + {usage['completion_tokens']} "
            f"completion tokens")
        say()

        say("Now a client calls continuously while keyrotd rotates dev-team, then revokes it (emergency).")
        outcome = {"ok": 0, "failed": 0}
        stop = threading.Event()

        def caller():
            while not stop.is_set():
                status, _ = self.call("alice", "/v1/chat/completions", chat("mistral-small-latest", "still there?"))
                outcome["ok" if status == 200 else "failed"] += 1
                time.sleep(0.1)

        threads = [threading.Thread(target=caller) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        before = self.generations()["analyst"]
        for command in ("rotate", "revoke"):
            result = subprocess.run([self.keyrotd, command, "dev-team", "--config", self.keyrotd_config, "--wait",
                                     "--timeout", "60s"], capture_output=True, text=True)
            now = self.generations()["analyst"]
            say(f"keyrotd {command} dev-team: exit {result.returncode}; the gateway now spends {now} "
                f"(was {before}); the client: {outcome['ok']} answers, {outcome['failed']} failures")
            before = now
        say("The client keeps calling while the rotated key's 5 s overlap ends and keyrotd deletes it...")
        time.sleep(7)
        stop.set()
        for thread in threads:
            thread.join()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_control/log", timeout=5) as response:
            log = [entry for entry in json.load(response) if entry.get("path") == "/v1/chat/completions"]
        deleted = sum(1 for entry in log if entry.get("key_deleted"))
        used = len({entry.get("key_id") for entry in log if entry.get("key_id")})
        say(f"Through both rotations alice got {outcome['ok']} answers and {outcome['failed']} failures, "
            f"and never held a provider key.")
        say(f"The provider saw {len(log)} chat requests on {used} different keys, {deleted} of them with a deleted key.")
        lines = [line for line in open(os.path.join(DEMO, "gateway.log")) if "POST /v1/chat/completions" in line]
        if lines:
            say("One request as the gateway logged it (no prompt, no answer, no secret):")
            print("  " + lines[-1].strip(), flush=True)
        say()
        say("keyrotd-gateway status:")
        subprocess.run([self.gateway, "status", "--socket", os.path.join(DEMO, "admin.sock")])
        return 0 if outcome["failed"] == 0 else 1

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    demo = Demo(sys.argv[1], sys.argv[2])
    timer = threading.Timer(TIMEOUT, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    try:
        status = demo.run()
    except KeyboardInterrupt:
        say("demo-gateway: stopped (timeout or Ctrl-C)")
        status = 1
    finally:
        demo.stop()
    say("demo-gateway: logs and state are in demo/gateway/")
    sys.exit(status)


if __name__ == "__main__":
    main()
