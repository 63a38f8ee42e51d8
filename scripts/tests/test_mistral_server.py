"""Tests of scripts/mistral-server, the local Mistral-compatible admin API server.

Each test class starts the server as a subprocess on port 0 (loopback), with an admin
key file in a temporary directory, and talks to it over HTTP with http.client.
Run with scripts/test-mistral-server.
"""

import datetime as dt
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "mistral-server"
WORKSPACE = "7f1e0c3a-9b2d-4c6e-8a1f-3d5b7c9e0a21"  # the server's default workspace
USER = "3d9c1f52-8e47-4b0a-a6d2-5f1e0b7c9a34"
MICRO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SECRET = re.compile(r"^[A-Za-z0-9]{32}$")

API_KEY_OUT = ["key_id", "key", "name", "hidden_key", "created_at", "expiration_date", "actions"]
API_KEY_EXTENDED_OUT = API_KEY_OUT + ["workspace_id", "workspace_name", "created_by", "product",
                                      "last_used", "can_delete"]
USAGE_OUT = ["completion", "ocr", "connectors", "libraries_api", "fine_tuning", "audio",
             "audio_characters", "vibe_usage", "vibe_code", "chat", "date", "previous_month",
             "next_month", "start_date", "end_date", "currency", "currency_symbol", "prices"]
LOG_ENTRY = {"seq", "time", "method", "path", "query", "status", "auth", "key_id", "fault",
             "key_deleted", "model", "stream", "prompt_tokens", "completion_tokens", "chunks",
             "stream_end"}
CONNECTION_LOST = (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionError)


def utc_today():
    return dt.datetime.now(dt.timezone.utc).date()


class ServerProcess:
    """The server under test, with its files in a temporary directory."""

    def __init__(self, admin_key=None, via_env=False, extra_args=()):
        self.admin_key = admin_key or "adm-" + secrets.token_urlsafe(24)
        self.dir = tempfile.mkdtemp(prefix="mistral-server-test.")
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "requests.jsonl")
        self.stdout_path = os.path.join(self.dir, "stdout")
        self.stderr_path = os.path.join(self.dir, "stderr")
        args = [str(SERVER), "--host", "127.0.0.1", "--port", "0", "--port-file", self.port_file,
                "--log-file", self.log_path, *extra_args]
        env = {k: v for k, v in os.environ.items() if k != "MISTRAL_SERVER_ADMIN_KEY"}
        if via_env:
            env["MISTRAL_SERVER_ADMIN_KEY"] = self.admin_key
        else:
            key_file = os.path.join(self.dir, "admin-key")
            with open(key_file, "w") as f:
                f.write(self.admin_key + "\n")
            args += ["--admin-key-file", key_file]
        self.args = args
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not write its port file")
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.port = int(f.read())

    def stdout(self):
        return Path(self.stdout_path).read_text()

    def stderr(self):
        return Path(self.stderr_path).read_text()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def raw(self, method, path, body=None, token=None, headers=None, conn=None):
        """(status, headers, body bytes); a fresh connection unless conn is given."""
        own = conn is None
        conn = conn or self.connect()
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp, resp.read()
        finally:
            if own:
                conn.close()

    def call(self, method, path, body=None, token=None, **kw):
        """(status, parsed JSON, response) for a Mistral API call, admin key by default."""
        token = self.admin_key if token is None else token
        status, resp, data = self.raw(method, path, body, token=token or None, **kw)
        self.assert_json(resp, data)
        return status, json.loads(data), resp

    def control(self, method, path, body=None):
        status, resp, data = self.raw(method, "/_control/" + path, body)
        return status, json.loads(data)

    @staticmethod
    def assert_json(resp, data):
        assert resp.getheader("Content-Type") == "application/json", resp.getheader("Content-Type")
        assert int(resp.getheader("Content-Length")) == len(data)


class ServerTestCase(unittest.TestCase):
    """One server per class; state reset before each test."""

    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        status, _ = self.server.control("POST", "reset")
        self.assertEqual(status, 200)

    # helpers

    def create(self, name="keyrotd/dev-team/g1/3f2a9c", expiration=None, workspace=WORKSPACE,
               user=USER, expect=200):
        body = {"name": name, "workspace_uuid": workspace, "user_id": user}
        if expiration is not None:
            body["expiration"] = expiration
        status, out, _ = self.server.call("POST", "/v1/admin/api-keys", body)
        self.assertEqual(status, expect, out)
        return out

    def list_keys(self, query=""):
        status, out, _ = self.server.call("GET", "/v1/admin/api-keys" + query)
        self.assertEqual(status, 200, out)
        return out["keys"]

    def add_fault(self, path, fault, method="POST", **extra):
        status, out = self.server.control("POST", "faults", {"method": method, "path": path,
                                                             "fault": fault, **extra})
        self.assertEqual(status, 200, out)
        return out

    def log(self):
        status, out = self.server.control("GET", "log")
        self.assertEqual(status, 200)
        return out

    def control_keys(self):
        return self.server.control("GET", "keys")[1]

    def assert_validation(self, out, *locs):
        self.assertIsInstance(out["detail"], list)
        for item in out["detail"]:
            self.assertTrue({"loc", "msg", "type"} <= set(item), item)
        self.assertEqual(sorted(tuple(i["loc"]) for i in out["detail"]), sorted(locs))


class ApiKeysTests(ServerTestCase):

    def test_create_returns_api_key_out(self):
        exp = (utc_today() + dt.timedelta(days=120)).isoformat()
        out = self.create(expiration=exp)
        self.assertTrue(set(API_KEY_OUT) <= set(out))
        self.assertEqual(out["x_unknown_field"], 1)
        self.assertEqual(str(uuid.UUID(out["key_id"])), out["key_id"])
        self.assertRegex(out["key"], SECRET)
        self.assertEqual(out["hidden_key"], out["key"][:4] + "..." + out["key"][-4:])
        self.assertEqual(out["name"], "keyrotd/dev-team/g1/3f2a9c")
        self.assertRegex(out["created_at"], MICRO_Z)
        created = dt.datetime.fromisoformat(out["created_at"])
        self.assertLess(abs(dt.datetime.now(dt.timezone.utc) - created), dt.timedelta(seconds=5))
        self.assertEqual(out["expiration_date"], exp)
        self.assertEqual(out["actions"], {"rotate": {"status": "available"},
                                          "delete": {"status": "available"}})

    def test_create_with_optional_fields_absent_or_null(self):
        out = self.create(name=None)
        self.assertIsNone(out["name"])
        self.assertIsNone(out["expiration_date"])
        status, out, _ = self.server.call("POST", "/v1/admin/api-keys",
                                          {"workspace_uuid": WORKSPACE, "user_id": USER,
                                           "expiration": None})
        self.assertEqual(status, 200, out)
        self.assertIsNone(out["name"])
        self.assertIsNone(out["expiration_date"])

    def test_each_create_gets_a_fresh_secret_and_id(self):
        a, b = self.create(), self.create()
        self.assertNotEqual(a["key"], b["key"])
        self.assertNotEqual(a["key_id"], b["key_id"])

    def test_concurrent_creates(self):
        results = []

        def worker():
            for _ in range(10):
                results.append(self.server.call("POST", "/v1/admin/api-keys", {
                    "name": "concurrent", "workspace_uuid": WORKSPACE, "user_id": USER})[1])

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len({r["key"] for r in results}), 80)
        self.assertEqual({k["key_id"] for k in self.list_keys()}, {r["key_id"] for r in results})
        self.assertEqual(sorted(e["seq"] for e in self.log()), list(range(
            self.log()[0]["seq"], self.log()[0]["seq"] + 81)))

    def test_create_validation_errors(self):
        today = utc_today()
        cases = [
            ({"name": "x", "user_id": USER}, [("body", "workspace_uuid")]),
            ({}, [("body", "workspace_uuid"), ("body", "user_id")]),
            ({"workspace_uuid": "not-a-uuid", "user_id": USER}, [("body", "workspace_uuid")]),
            ({"workspace_uuid": WORKSPACE, "user_id": 42}, [("body", "user_id")]),
            ({"workspace_uuid": WORKSPACE, "user_id": USER,
              "expiration": (today - dt.timedelta(days=1)).isoformat()}, [("body", "expiration")]),
            ({"workspace_uuid": WORKSPACE, "user_id": USER, "expiration": today.isoformat()},
             [("body", "expiration")]),
            ({"workspace_uuid": WORKSPACE, "user_id": USER, "expiration": "31/12/2030"},
             [("body", "expiration")]),
            ({"workspace_uuid": WORKSPACE, "user_id": USER, "name": "n" * 256},
             [("body", "name")]),
            ({"workspace_uuid": WORKSPACE, "user_id": USER, "name": 7}, [("body", "name")]),
            ([1, 2], [("body",)]),
        ]
        for body, locs in cases:
            with self.subTest(body=body):
                status, out, _ = self.server.call("POST", "/v1/admin/api-keys", body)
                self.assertEqual(status, 422)
                self.assert_validation(out, *locs)
        status, out, _ = self.server.call("POST", "/v1/admin/api-keys", b"{not json")
        self.assertEqual(status, 422)
        self.assertEqual(out["detail"][0]["type"], "json_invalid")
        status, out, _ = self.server.call("POST", "/v1/admin/api-keys")
        self.assertEqual(status, 422)
        self.assert_validation(out, ("body",))
        past = {"workspace_uuid": WORKSPACE, "user_id": USER, "expiration": "2020-01-01"}
        out = self.server.call("POST", "/v1/admin/api-keys", past)[1]
        self.assertEqual(out["detail"][0]["type"], "date_future")
        self.assertEqual(self.control_keys(), [], "no key stored by a refused create")

    def test_list_shape_and_creation_order(self):
        made = [self.create(name=f"key-{i}") for i in range(3)]
        keys = self.list_keys()
        self.assertEqual([k["key_id"] for k in keys], [m["key_id"] for m in made])
        for k, m in zip(keys, made):
            self.assertTrue(set(API_KEY_EXTENDED_OUT) <= set(k))
            self.assertIsNone(k["key"], "the secret is shown only at creation")
            self.assertEqual(k["x_unknown_field"], 1)
            self.assertEqual(k["hidden_key"], m["hidden_key"])
            self.assertEqual(k["created_at"], m["created_at"])
            self.assertEqual(k["workspace_id"], WORKSPACE)
            self.assertEqual(k["workspace_name"], "Default Workspace")
            self.assertEqual(k["created_by"], USER)
            self.assertIsNone(k["last_used"])
            self.assertIs(k["can_delete"], True)
            self.assertEqual(k["product"], "API")
            self.assertIn("rotate", k["actions"])
        dump = json.dumps(keys)
        for m in made:
            self.assertNotIn(m["key"], dump)

    def test_list_paging(self):
        made = [self.create(name=f"page-{i}")["key_id"] for i in range(5)]
        self.assertEqual([k["key_id"] for k in self.list_keys("?limit=2")], made[:2])
        self.assertEqual([k["key_id"] for k in self.list_keys("?limit=2&offset=2")], made[2:4])
        self.assertEqual([k["key_id"] for k in self.list_keys("?limit=2&offset=4")], made[4:])
        self.assertEqual(self.list_keys("?offset=5"), [])
        self.assertEqual(self.list_keys("?limit=0"), [])
        for query, loc in (("?limit=abc", ("query", "limit")), ("?offset=-1", ("query", "offset"))):
            status, out, _ = self.server.call("GET", "/v1/admin/api-keys" + query)
            self.assertEqual(status, 422)
            self.assert_validation(out, loc)

    def test_list_default_limit_is_100(self):
        for i in range(103):
            self.server.control("POST", "keys", {"name": f"bulk-{i:03d}"})
        keys = self.list_keys()
        self.assertEqual(len(keys), 100)
        self.assertEqual(keys[0]["name"], "bulk-000")
        self.assertEqual([k["name"] for k in self.list_keys("?offset=100")],
                         ["bulk-100", "bulk-101", "bulk-102"])

    def test_name_filter(self):
        a = self.create(name="keyrotd/dev-team/g1/aaa")
        b = self.create(name="KEYROTD/ops/g2/bbb")
        c = self.create(name="Café Prod")
        d = self.create(name=None)

        def ids(query):
            return {k["key_id"] for k in self.list_keys("?name=" + urllib.parse.quote(query))}

        self.assertEqual(ids("keyrotd/"), {a["key_id"], b["key_id"]})
        self.assertEqual(ids("Dev-Team"), {a["key_id"]})
        self.assertEqual(ids("cafe"), {c["key_id"]}, "accent-insensitive")
        self.assertEqual(ids("CAFÉ"), {c["key_id"]})
        self.assertEqual(ids("no such"), set())
        self.assertEqual(len(ids("")), 4, "an empty filter is no filter")
        for key in (a, d):
            last4 = key["key"][-4:]
            found = ids(last4.lower())
            self.assertIn(key["key_id"], found, "last 4 characters of the key match")
            for other in (a, b, c, d):
                if other["key_id"] in found:
                    self.assertTrue(other["key"][-4:].lower() == last4.lower()
                                    or last4.lower() in (other["name"] or "").lower())
        self.assertEqual(ids("keyrotd/&limit=1"), set())
        self.assertEqual(
            {k["key_id"] for k in self.list_keys("?name=KEYROTD&limit=1&offset=1")},
            {b["key_id"]}, "filter applies before paging")

    def test_delete_then_404(self):
        key = self.create()
        keep = self.create(name="other")
        status, out, _ = self.server.call("DELETE", f"/v1/admin/api-keys/{key['key_id']}")
        self.assertEqual(status, 200)
        self.assertIsInstance(out["detail"], str)
        self.assertEqual([k["key_id"] for k in self.list_keys()], [keep["key_id"]])
        status, out, _ = self.server.call("DELETE", f"/v1/admin/api-keys/{key['key_id']}")
        self.assertEqual(status, 404)
        self.assertIsInstance(out["detail"], str)
        status, _, _ = self.server.call("DELETE", f"/v1/admin/api-keys/{uuid.uuid4()}")
        self.assertEqual(status, 404)
        status, out, _ = self.server.call("DELETE", "/v1/admin/api-keys/not-a-uuid")
        self.assertEqual(status, 422)
        self.assert_validation(out, ("path", "key_id"))
        views = {v["key_id"]: v for v in self.control_keys()}
        self.assertRegex(views[key["key_id"]]["deleted_at"], MICRO_Z)
        self.assertIsNone(views[keep["key_id"]]["deleted_at"])

    def test_admin_paths_need_the_admin_key(self):
        issued = self.create()
        paths = [("GET", "/v1/admin/api-keys"), ("POST", "/v1/admin/api-keys"),
                 ("DELETE", f"/v1/admin/api-keys/{issued['key_id']}"),
                 ("GET", "/v1/admin/spend-limit"), ("POST", "/v1/admin/spend-limit"),
                 ("GET", "/v1/admin/usage"), ("GET", "/v1/admin/rate-limit"),
                 ("GET", "/v1/admin/workspaces"), ("POST", "/v1/admin/workspaces")]
        bad_auth = [{}, {"Authorization": "Bearer wrong-key"},
                    {"Authorization": f"Basic {self.server.admin_key}"},
                    {"Authorization": "Bearer"}, {"Authorization": f"Bearer {issued['key']}"}]
        for method, path in paths:
            for headers in bad_auth:
                with self.subTest(method=method, path=path, headers=list(headers.values())[:1]):
                    status, resp, data = self.server.raw(method, path, body={}, headers=headers)
                    self.assertEqual(status, 401)
                    self.assertEqual(json.loads(data), {"detail": "Unauthorized"})
                    self.assertEqual(resp.getheader("WWW-Authenticate"), "Bearer")
        self.assertEqual(len(self.list_keys()), 1, "nothing was deleted or created")


class ModelsTests(ServerTestCase):

    def models(self, token):
        return self.server.call("GET", "/v1/models", token=token)

    def test_issued_key_is_accepted_and_last_used_recorded(self):
        key = self.create()
        status, out, _ = self.models(key["key"])
        self.assertEqual(status, 200, out)
        self.assertEqual(out["object"], "list")
        self.assertTrue(out["data"])
        for card in out["data"]:
            self.assertTrue({"id", "capabilities", "object", "created", "owned_by"} <= set(card))
            self.assertIsInstance(card["capabilities"]["completion_chat"], bool)
        view = self.control_keys()[0]
        self.assertRegex(view["last_used"], MICRO_Z)
        self.assertEqual(self.list_keys()[0]["last_used"], utc_today().isoformat())
        status, out, _ = self.server.call("GET", "/v1/models?model=mistral-large-latest",
                                          token=key["key"])
        self.assertEqual([c["id"] for c in out["data"]], ["mistral-large-latest"])

    def test_refused_keys(self):
        deleted = self.create(name="deleted")
        self.server.call("DELETE", f"/v1/admin/api-keys/{deleted['key_id']}")
        expired = self.create(name="expired")
        status, _ = self.server.control("PATCH", f"keys/{expired['key_id']}",
                                        {"expiration_date": utc_today().isoformat()})
        self.assertEqual(status, 200)
        past = self.server.control("POST", "keys", {"name": "seeded-expired",
                                                    "expiration_date": "2024-01-01"})[1]
        for token in (deleted["key"], expired["key"], past["key"], "not-a-key-" + "x" * 22,
                      self.server.admin_key):
            with self.subTest(token=token[:4]):
                status, out, _ = self.models(token)
                self.assertEqual(status, 401)
                self.assertEqual(out, {"detail": "Unauthorized"})
        status, _, _ = self.server.raw("GET", "/v1/models")
        self.assertEqual(status, 401)
        self.assertTrue(all(v["last_used"] is None for v in self.control_keys()))
        listed = {k["key_id"]: k for k in self.list_keys()}
        self.assertEqual(listed[expired["key_id"]]["actions"]["rotate"],
                         {"status": "unavailable", "reason": "key_expired"})

    def test_key_with_future_expiration_works(self):
        key = self.create(expiration=(utc_today() + dt.timedelta(days=1)).isoformat())
        self.assertEqual(self.models(key["key"])[0], 200)


class BudgetAndWorkspaceTests(ServerTestCase):

    def test_spend_limit_defaults_and_control(self):
        status, out, _ = self.server.call("GET", "/v1/admin/spend-limit")
        self.assertEqual(status, 200)
        limits = out["limits"]
        self.assertTrue({"completion", "last_payment_failure", "last_payment_failure_protection",
                         "currency"} <= set(limits))
        self.assertIn("monthly_limit_reached", limits["completion"])
        status, _ = self.server.control("POST", "usage", {"usage_limit": 1000, "usage": 850.5,
                                                          "currency": "USD"})
        self.assertEqual(status, 200)
        completion = self.server.call("GET", "/v1/admin/spend-limit")[1]["limits"]["completion"]
        self.assertEqual(completion["usage"], 850.5)
        self.assertEqual(completion["usage_limit"], 1000)
        self.assertEqual(completion["total_usage"], 850.5)
        self.assertIs(completion["monthly_limit_reached"], False)
        self.server.control("POST", "usage", {"usage": 999.0, "vibe_usage": 1.0})
        out = self.server.call("GET", "/v1/admin/spend-limit")[1]["limits"]
        self.assertIs(out["completion"]["monthly_limit_reached"], True)
        self.assertEqual(out["currency"], "USD")
        self.assertEqual(self.server.control("POST", "usage", {"usage": "lots"})[0], 400)

    def test_update_spend_limit(self):
        status, out, _ = self.server.call("POST", "/v1/admin/spend-limit", {"amount": 2500})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["limits"]["completion"]["usage_limit"], 2500)
        status, out, _ = self.server.call("POST", "/v1/admin/spend-limit", {"amount": "x"})
        self.assertEqual(status, 422)
        self.assert_validation(out, ("body", "amount"))
        status, out, _ = self.server.call("POST", "/v1/admin/spend-limit", {})
        self.assert_validation(out, ("body", "amount"))

    def test_usage(self):
        other_ws = str(uuid.uuid4())
        self.server.control("POST", "usage", {"entries": [
            {"year": 2026, "month": 10, "model": "mistral-large-latest", "input_tokens": 1000,
             "output_tokens": 500},
            {"year": 2026, "month": 10, "model": "mistral-small-latest", "input_tokens": 10,
             "output_tokens": 20, "workspace_id": other_ws},
            {"year": 2026, "month": 9, "model": "codestral-latest", "input_tokens": 1,
             "output_tokens": 1},
        ]})
        status, out, _ = self.server.call("GET", "/v1/admin/usage?month=10&year=2026")
        self.assertEqual(status, 200)
        self.assertTrue(set(USAGE_OUT) <= set(out))
        models = out["completion"]["models"]
        self.assertEqual(set(models), {"mistral-large-latest", "mistral-small-latest"})
        entry = models["mistral-large-latest"]["input"][0]
        self.assertEqual(entry["value"], 1000)
        self.assertAlmostEqual(entry["amount"], 0.002)
        self.assertEqual(models["mistral-large-latest"]["output"][0]["value"], 500)
        self.assertEqual(out["previous_month"], "2026-09")
        self.assertTrue(out["start_date"].startswith("2026-10-01T00:00:00"))
        self.assertTrue(out["end_date"].startswith("2026-10-31T23:59:59"))
        for price in out["prices"]:
            self.assertTrue({"event_type", "billing_metric", "billing_group", "api_zone",
                             "service_tier", "price"} <= set(price))
        out = self.server.call("GET", f"/v1/admin/usage?month=10&year=2026&workspace_id={other_ws}")[1]
        self.assertEqual(set(out["completion"]["models"]), {"mistral-small-latest"})
        out = self.server.call("GET", "/v1/admin/usage")[1]
        self.assertTrue(set(USAGE_OUT) <= set(out), "defaults to the current month")
        for query, loc in (("month=13", "month"), ("year=abc", "year"),
                           ("workspace_id=nope", "workspace_id")):
            status, out, _ = self.server.call("GET", "/v1/admin/usage?" + query)
            self.assertEqual(status, 422)
            self.assert_validation(out, ("query", loc))

    def test_rate_limit(self):
        self.server.control("POST", "usage", {"requests_per_second": 7})
        status, out, _ = self.server.call("GET", "/v1/admin/rate-limit")
        self.assertEqual(status, 200)
        self.assertEqual(out["requests_per_second"], 7)
        for limits in out["tokens_limits_by_model"].values():
            self.assertEqual(set(limits), {"tokens_per_minute", "tokens_per_month"})

    def test_workspaces(self):
        status, out, _ = self.server.call("GET", "/v1/admin/workspaces")
        self.assertEqual(status, 200)
        self.assertEqual(out["total"], 1)
        self.assertEqual((out["page"], out["page_size"], out["object"]), (1, 25, "list"))
        default = out["items"][0]
        self.assertEqual(default["uuid"], WORKSPACE)
        self.assertIs(default["is_default"], True)
        self.assertTrue({"uuid", "name", "description", "icon", "is_default"} <= set(default))
        status, made, _ = self.server.call("POST", "/v1/admin/workspaces",
                                           {"name": "Product Team", "admin_user_id": USER})
        self.assertEqual(status, 200, made)
        self.assertTrue({"uuid", "name", "description", "icon", "is_default", "raw_roles",
                         "raw_role"} <= set(made))
        out = self.server.call("GET", "/v1/admin/workspaces?search=product")[1]
        self.assertEqual([w["uuid"] for w in out["items"]], [made["uuid"]])
        out = self.server.call("GET", "/v1/admin/workspaces?page=2&page_size=1")[1]
        self.assertEqual((out["total"], len(out["items"])), (2, 1))
        self.assertEqual(self.server.call("GET", "/v1/admin/workspaces?page=0")[0], 422)
        status, out, _ = self.server.call("POST", "/v1/admin/workspaces", {"name": "x"})
        self.assertEqual(status, 422)
        self.assert_validation(out, ("body", "admin_user_id"))
        self.create(workspace=made["uuid"])
        self.create(workspace=str(uuid.uuid4()))
        names = [k["workspace_name"] for k in self.list_keys()]
        self.assertEqual(names, ["Product Team", None])

    def test_control_workspaces_and_their_spend_limits(self):
        ws = str(uuid.uuid4())
        status, seeded = self.server.control("POST", "workspaces", {
            "uuid": ws, "name": "Product Team", "spend_limit": {"value": 50}})
        self.assertEqual(status, 200, seeded)
        self.assertEqual(seeded["spend_limit"],
                         {"value": 50.0, "currency": "EUR", "no_monthly_limit": False})
        out = self.server.call("GET", "/v1/admin/workspaces")[1]
        self.assertEqual([w["uuid"] for w in out["items"]], [WORKSPACE, ws])
        self.assertEqual(out["items"][1]["spend_limit"]["value"], 50.0)
        self.assertIs(out["items"][0]["spend_limit"]["no_monthly_limit"], True)
        status, patched = self.server.control("PATCH", f"workspaces/{WORKSPACE}", {
            "spend_limit": {"value": 20, "currency": "USD", "no_monthly_limit": True}})
        self.assertEqual(status, 200, patched)
        self.assertEqual(patched["spend_limit"],
                         {"value": 20.0, "currency": "USD", "no_monthly_limit": True})
        self.server.control("PATCH", f"workspaces/{ws}", {"spend_limit": None, "archived": True})
        out = self.server.call("GET", "/v1/admin/workspaces")[1]
        self.assertEqual([w["uuid"] for w in out["items"]], [WORKSPACE], "archived: not listed")
        out = self.server.call("GET", "/v1/admin/workspaces?is_archived=true")[1]
        self.assertIsNone(out["items"][1]["spend_limit"])
        views = self.server.control("GET", "workspaces")[1]
        self.assertEqual([(w["uuid"], w["archived"]) for w in views],
                         [(WORKSPACE, False), (ws, True)])
        status, made = self.server.control("POST", "workspaces", {})
        self.assertEqual(status, 200, made)
        self.assertEqual(str(uuid.UUID(made["uuid"])), made["uuid"])
        for path, body in (("workspaces", {"uuid": ws}), ("workspaces", {"uuid": "nope"}),
                           ("workspaces", {"colour": "red"}),
                           ("workspaces", {"spend_limit": {"value": -1}}),
                           ("workspaces", {"spend_limit": {"value": "10"}}),
                           ("workspaces", {"spend_limit": {"limit": 10}}),
                           ("workspaces", {"spend_limit": 10}),
                           (f"workspaces/{ws}", {"uuid": WORKSPACE}),
                           (f"workspaces/{ws}", {"archived": "yes"})):
            method = "PATCH" if "/" in path else "POST"
            self.assertEqual(self.server.control(method, path, body)[0], 400, (path, body))
        self.assertEqual(self.server.control("PATCH", f"workspaces/{uuid.uuid4()}", {})[0], 404)
        self.assertEqual(self.server.control("PATCH", "workspaces/nope", {})[0], 404)
        self.server.control("POST", "reset")
        self.assertEqual([w["uuid"] for w in self.server.control("GET", "workspaces")[1]],
                         [WORKSPACE])

    def test_usage_entries_added_for_a_workspace_and_month(self):
        ws = str(uuid.uuid4())
        self.server.control("POST", "usage", {"entries": [
            {"year": 2026, "month": 10, "workspace_id": ws, "input_tokens": 1000,
             "input_price": 0.001, "output_tokens": 0}]})
        status, view = self.server.control("POST", "usage", {"add_entries": [
            {"year": 2026, "month": 10, "workspace_id": ws, "model": "codestral-latest",
             "input_tokens": 100, "output_tokens": 200, "input_price": 0.01, "output_price": 0.02},
            {"year": 2026, "month": 11, "workspace_id": ws, "input_tokens": 7,
             "input_price": 1.0}]})
        self.assertEqual(status, 200, view)
        self.assertEqual(len(view["entries"]), 3, "appended, not replaced")

        def amounts(query):
            out = self.server.call("GET", "/v1/admin/usage?" + query)[1]
            return sorted(e["amount"] for model in out["completion"]["models"].values()
                          for entries in model.values() for e in entries)

        self.assertEqual(amounts(f"month=10&year=2026&workspace_id={ws}"), [0.0, 1.0, 1.0, 4.0])
        self.assertEqual(amounts(f"month=11&year=2026&workspace_id={ws}"), [0.0, 7.0])
        self.assertEqual(amounts("month=10&year=2026&workspace_id=" + WORKSPACE), [])
        self.assertEqual(self.server.control("POST", "usage", {"add_entries": {}})[0], 400)


class HttpTests(ServerTestCase):

    def test_unknown_paths_404_and_wrong_methods_405(self):
        for method, path in (("GET", "/v1/nope"), ("GET", "/"), ("POST", "/v1/admin"),
                             ("GET", "/v1/admin/api-keys/x/y"), ("GET", "/_control/nope")):
            with self.subTest(path=path):
                status, out, _ = self.server.call(method, path)
                self.assertEqual(status, 404)
                self.assertEqual(out, {"detail": "Not Found"})
        for method, path in (("PUT", "/v1/admin/api-keys"), ("DELETE", "/v1/admin/api-keys"),
                             ("GET", f"/v1/admin/api-keys/{uuid.uuid4()}"),
                             ("POST", "/v1/models"), ("DELETE", "/v1/admin/usage"),
                             ("PATCH", "/v1/admin/spend-limit"), ("PUT", "/_control/log")):
            with self.subTest(method=method, path=path):
                status, out, resp = self.server.call(method, path)
                self.assertEqual(status, 405)
                self.assertEqual(out, {"detail": "Method Not Allowed"})
                self.assertTrue(resp.getheader("Allow"))

    def test_keep_alive_answers_are_not_held_back(self):
        # Headers and body are separate writes; with Nagle's algorithm on the server
        # socket, a keep-alive client's delayed ACK held each answer ~40 ms.
        key = self.create()
        conn = self.server.connect()
        try:
            started = time.monotonic()
            for _ in range(20):
                status, _, _ = self.server.raw("GET", "/v1/models", token=key["key"], conn=conn)
                self.assertEqual(status, 200)
            per_request = (time.monotonic() - started) / 20
        finally:
            conn.close()
        self.assertLess(per_request, 0.02)

    def test_keep_alive(self):
        conn = self.server.connect()
        try:
            for _ in range(3):
                status, resp, data = self.server.raw(
                    "GET", "/v1/admin/api-keys", token=self.server.admin_key, conn=conn)
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(data), {"keys": []})
                self.assertFalse(resp.will_close)
            status, _, _ = self.server.raw("POST", "/v1/admin/api-keys", conn=conn,
                                           token=self.server.admin_key,
                                           body={"workspace_uuid": WORKSPACE, "user_id": USER})
            self.assertEqual(status, 200)
        finally:
            conn.close()

    def test_chunked_request_body(self):
        conn = self.server.connect()
        try:
            body = json.dumps({"workspace_uuid": WORKSPACE, "user_id": USER}).encode()
            conn.request("POST", "/v1/admin/api-keys", body=iter([body[:10], body[10:]]),
                         headers={"Authorization": f"Bearer {self.server.admin_key}"},
                         encode_chunked=True)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertIn("key", json.loads(resp.read()))
        finally:
            conn.close()


class FaultTests(ServerTestCase):

    BODY = {"name": "faulted", "workspace_uuid": WORKSPACE, "user_id": USER}

    def post_create(self):
        return self.server.call("POST", "/v1/admin/api-keys", self.BODY)

    def test_status_faults(self):
        for code in (401, 403, 422, 429, 500, 503):
            with self.subTest(code=code):
                self.add_fault("/v1/admin/api-keys", {"status": code})
                status, out, resp = self.post_create()
                self.assertEqual(status, code)
                self.assertIn("detail", out)
                self.assertIsNone(resp.getheader("Retry-After"))
                self.assertEqual(self.post_create()[0], 200, "times defaults to 1")
        self.assertEqual(len(self.list_keys()), 6, "faulted creates stored nothing")
        entries = [e for e in self.log() if e["fault"]]
        self.assertEqual([e["fault"] for e in entries],
                         [f"status:{c}" for c in (401, 403, 422, 429, 500, 503)])
        self.assertEqual([e["status"] for e in entries], [401, 403, 422, 429, 500, 503])
        self.assertTrue(all(e["key_id"] is None for e in entries))

    def test_retry_after_and_body_override(self):
        self.add_fault("/v1/admin/api-keys", {"status": 429, "retry_after": 7})
        status, out, resp = self.post_create()
        self.assertEqual((status, resp.getheader("Retry-After")), (429, "7"))
        date = "Wed, 21 Oct 2026 07:28:00 GMT"
        self.add_fault("/v1/admin/api-keys", {"status": 503, "retry_after": date,
                                              "body": {"message": "down for maintenance"}})
        status, out, resp = self.post_create()
        self.assertEqual((status, resp.getheader("Retry-After")), (503, date))
        self.assertEqual(out, {"message": "down for maintenance"})
        status, out = self.server.control("POST", "faults", {
            "method": "POST", "path": "/v1/admin/api-keys",
            "fault": {"status": 500, "retry_after": 3}})
        self.assertEqual(status, 400, "retry_after only for 429/503")

    def test_times_is_honoured(self):
        self.add_fault("/v1/admin/api-keys", {"status": 500}, times=2)
        self.assertEqual([self.post_create()[0] for _ in range(3)], [500, 500, 200])
        self.add_fault("/v1/admin/api-keys", {"status": 503}, times=0)
        self.assertEqual([self.post_create()[0] for _ in range(4)], [503] * 4)
        self.assertEqual(len(self.server.control("GET", "faults")[1]), 1)
        self.add_fault("/v1/admin/api-keys", {"status": 500}, times=None)
        self.assertEqual(self.server.control("DELETE", "faults")[0], 200)
        self.assertEqual(self.server.control("GET", "faults")[1], [])
        self.assertEqual(self.post_create()[0], 200)

    def test_faults_consumed_in_registration_order(self):
        self.add_fault("/v1/admin/api-keys", {"status": 500})
        self.add_fault("/v1/admin/api-keys", {"status": 429, "retry_after": 1})
        self.assertEqual([self.post_create()[0] for _ in range(3)], [500, 429, 200])

    def test_method_and_prefix_matching(self):
        key = self.create()
        self.add_fault("/v1/admin/api-keys/*", {"status": 503}, method="DELETE")
        self.add_fault("/v1/admin/api-keys", {"status": 500}, method="GET")
        self.assertEqual(self.post_create()[0], 200, "neither method nor path matches")
        status, _, _ = self.server.call("DELETE", f"/v1/admin/api-keys/{key['key_id']}")
        self.assertEqual(status, 503)
        self.assertEqual(self.server.call("GET", "/v1/admin/api-keys")[0], 500)
        status, _, _ = self.server.call("DELETE", f"/v1/admin/api-keys/{key['key_id']}")
        self.assertEqual(status, 200)
        self.add_fault("*", {"status": 502}, method="*")
        self.assertEqual(self.server.call("GET", "/v1/admin/rate-limit")[0], 502)
        self.add_fault("/_control/*", {"status": 500}, method="*", times=0)
        self.assertEqual(self.server.control("GET", "log")[0], 200, "control is never faulted")

    def test_delay(self):
        self.add_fault("/v1/admin/api-keys", {"delay": 0.4}, method="GET")
        start = time.monotonic()
        status, out, _ = self.server.call("GET", "/v1/admin/api-keys")
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        self.assertEqual((status, out), (200, {"keys": []}))
        self.add_fault("/v1/admin/api-keys", {"delay": 0.2, "status": 503, "retry_after": 1})
        start = time.monotonic()
        status, _, resp = self.post_create()
        self.assertGreaterEqual(time.monotonic() - start, 0.2)
        self.assertEqual((status, resp.getheader("Retry-After")), (503, "1"))
        self.assertEqual([e["fault"] for e in self.log()], ["delay", "delay+status:503"])

    def test_drop_after_create_stores_the_key(self):
        self.add_fault("/v1/admin/api-keys", {"drop_after_create": True})
        with self.assertRaises(CONNECTION_LOST):
            self.post_create()
        keys = self.list_keys()
        self.assertEqual([k["name"] for k in keys], ["faulted"])
        (entry,) = [e for e in self.log() if e["fault"]]
        self.assertEqual((entry["fault"], entry["status"], entry["key_id"]),
                         ("drop_after_create", None, keys[0]["key_id"]))
        self.assertEqual(self.post_create()[0], 200)

    def test_drop_after_create_on_delete_deletes(self):
        key = self.create()
        self.add_fault("/v1/admin/api-keys/*", {"drop_after_create": True}, method="DELETE")
        with self.assertRaises(CONNECTION_LOST):
            self.server.call("DELETE", f"/v1/admin/api-keys/{key['key_id']}")
        self.assertEqual(self.list_keys(), [])
        self.assertEqual(self.server.call("DELETE", f"/v1/admin/api-keys/{key['key_id']}")[0], 404)

    def test_drop_has_no_effect(self):
        self.add_fault("/v1/admin/api-keys", {"drop": True})
        with self.assertRaises(CONNECTION_LOST):
            self.post_create()
        self.assertEqual(self.control_keys(), [])
        self.assertEqual(self.log()[-1]["fault"], "drop")
        self.assertIsNone(self.log()[-1]["status"])

    def test_malformed(self):
        self.add_fault("/v1/admin/api-keys", {"malformed": True})
        status, resp, data = self.server.raw("POST", "/v1/admin/api-keys", self.BODY,
                                             token=self.server.admin_key)
        self.assertEqual(status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        with self.assertRaises(json.JSONDecodeError):
            json.loads(data)
        self.assertEqual(self.control_keys(), [], "a malformed create stores no key")
        self.add_fault("/v1/admin/api-keys", {"malformed": True}, method="GET")
        status, _, data = self.server.raw("GET", "/v1/admin/api-keys", token=self.server.admin_key)
        self.assertEqual(status, 200)
        with self.assertRaises(json.JSONDecodeError):
            json.loads(data)

    def test_truncated(self):
        self.add_fault("/v1/admin/api-keys", {"truncated": True})
        conn = self.server.connect()
        try:
            conn.request("POST", "/v1/admin/api-keys", body=json.dumps(self.BODY).encode(),
                         headers={"Authorization": f"Bearer {self.server.admin_key}"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            with self.assertRaises(http.client.IncompleteRead):
                resp.read()
        finally:
            conn.close()
        self.assertEqual(len(self.list_keys()), 1, "the create happened; its answer was cut")
        self.add_fault("/v1/admin/api-keys", {"truncated": True, "effect": False})
        conn = self.server.connect()
        try:
            conn.request("POST", "/v1/admin/api-keys", body=json.dumps(self.BODY).encode(),
                         headers={"Authorization": f"Bearer {self.server.admin_key}"})
            resp = conn.getresponse()
            with self.assertRaises(http.client.IncompleteRead):
                resp.read()
        finally:
            conn.close()
        self.assertEqual(len(self.list_keys()), 1)

    def test_bad_fault_requests(self):
        for body in ({"path": "/x", "fault": {}}, {"path": "/x", "fault": {"status": 200}},
                     {"path": "x", "fault": {"drop": True}}, {"path": "/x"},
                     {"path": "/x", "fault": {"drop": True, "malformed": True}},
                     {"path": "/x", "fault": {"bogus": 1}},
                     {"path": "/x", "fault": {"drop": True}, "times": -1}):
            with self.subTest(body=body):
                status, out = self.server.control("POST", "faults", body)
                self.assertEqual(status, 400)
                self.assertIsInstance(out["detail"], str)


class ControlAndLogTests(ServerTestCase):

    def test_log_entries(self):
        key = self.create()
        self.server.call("GET", "/v1/models?model=mistral-embed", token=key["key"])
        self.server.raw("GET", "/v1/admin/api-keys?limit=5&name=dev")
        self.server.call("GET", "/v1/admin/api-keys", token="wrong")
        self.server.call("DELETE", f"/v1/admin/api-keys/{key['key_id']}")
        log = self.log()
        for e in log:
            self.assertEqual(set(e), LOG_ENTRY)
            self.assertRegex(e["time"], MICRO_Z)
        self.assertEqual([e["seq"] for e in log], sorted(e["seq"] for e in log))
        self.assertEqual([(e["method"], e["path"], e["status"], e["auth"], e["key_id"]) for e in log], [
            ("POST", "/v1/admin/api-keys", 200, "admin", key["key_id"]),
            ("GET", "/v1/models", 200, f"key:{key['key_id']}", key["key_id"]),
            ("GET", "/v1/admin/api-keys", 401, "none", None),
            ("GET", "/v1/admin/api-keys", 401, "bad", None),
            ("DELETE", f"/v1/admin/api-keys/{key['key_id']}", 200, "admin", key["key_id"]),
        ])
        self.assertEqual(log[1]["query"], {"model": "mistral-embed"})
        self.assertEqual(log[2]["query"], {"limit": "5", "name": "dev"})
        self.assertTrue(all(e["fault"] is None for e in log))
        with open(self.server.log_path) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(lines[-len(log):], log)
        self.assertEqual(self.server.control("DELETE", "log")[0], 200)
        self.assertEqual(self.log(), [])
        self.server.call("GET", "/v1/admin/rate-limit")
        self.assertGreater(self.log()[0]["seq"], log[-1]["seq"], "seq keeps counting")

    def test_seed_and_patch_keys(self):
        seeded = self.server.control("POST", "keys", {
            "name": "adopt-me", "workspace_uuid": WORKSPACE, "user_id": USER,
            "created_at": "2026-01-02T03:04:05Z", "last_used": "2026-02-03T04:05:06.5+01:00",
            "expiration_date": "2027-01-01"})
        status, key = seeded
        self.assertEqual(status, 200, key)
        self.assertTrue(set(API_KEY_OUT) <= set(key))
        self.assertRegex(key["key"], SECRET)
        self.assertEqual(key["created_at"], "2026-01-02T03:04:05.000000Z")
        listed = self.list_keys()[0]
        self.assertEqual((listed["key_id"], listed["last_used"], listed["expiration_date"]),
                         (key["key_id"], "2026-02-03", "2027-01-01"))
        self.assertEqual(self.server.call("GET", "/v1/models", token=key["key"])[0], 200)
        status, view = self.server.control("PATCH", f"keys/{key['key_id']}",
                                           {"last_used": None, "expiration_date": None})
        self.assertEqual(status, 200, view)
        self.assertEqual((view["last_used"], view["expiration_date"]), (None, None))
        self.assertEqual(set(view), {"key_id", "name", "hidden_key", "workspace_uuid", "user_id",
                                     "created_by", "created_at", "expiration_date", "deleted_at",
                                     "last_used"})
        status, view = self.server.control("PATCH", f"keys/{key['key_id']}",
                                           {"last_used": "2026-03-01"})
        self.assertEqual(view["last_used"], "2026-03-01T00:00:00.000000Z")
        self.assertEqual(self.server.control("PATCH", f"keys/{uuid.uuid4()}", {})[0], 404)
        self.assertEqual(self.server.control("PATCH", f"keys/{key['key_id']}",
                                             {"secret": "x"})[0], 400)
        self.assertEqual(self.server.control("PATCH", f"keys/{key['key_id']}",
                                             {"expiration_date": "tomorrow"})[0], 400)
        self.assertEqual(self.server.control("POST", "keys", {"workspace_uuid": "x"})[0], 400)
        status, seeded_default = self.server.control("POST", "keys", {})
        self.assertEqual(status, 200)
        self.assertEqual(self.control_keys()[1]["workspace_uuid"], WORKSPACE)
        self.assertNotIn(seeded_default["key"], json.dumps(self.control_keys()))

    def test_control_keys_include_deleted(self):
        a, b = self.create(name="a"), self.create(name="b")
        self.server.call("DELETE", f"/v1/admin/api-keys/{a['key_id']}")
        views = self.control_keys()
        self.assertEqual([v["key_id"] for v in views], [a["key_id"], b["key_id"]])
        self.assertIsNotNone(views[0]["deleted_at"])
        self.assertEqual(views[0]["user_id"], USER)
        self.assertEqual(views[0]["workspace_uuid"], WORKSPACE)

    def test_timestamp_format_options(self):
        self.server.control("POST", "keys", {"name": "t", "created_at": "2026-11-27T10:30:00.123456Z",
                                             "last_used": "2026-11-27T11:00:00Z"})
        expected = {
            "micro": "2026-11-27T10:30:00.123456Z", "milli": "2026-11-27T10:30:00.123Z",
            "seconds": "2026-11-27T10:30:00Z", "nanos": "2026-11-27T10:30:00.123456000Z",
            "offset": "2026-11-27T10:30:00.123456+00:00", "naive": "2026-11-27T10:30:00.123456",
        }
        for fmt, value in expected.items():
            with self.subTest(fmt=fmt):
                self.assertEqual(self.server.control("POST", "options",
                                                     {"created_at_format": fmt})[0], 200)
                self.assertEqual(self.list_keys()[0]["created_at"], value)
        self.server.control("POST", "options", {"created_at_format": "micro",
                                                "last_used_format": "datetime"})
        self.assertEqual(self.list_keys()[0]["last_used"], "2026-11-27T11:00:00.000000Z")
        self.assertEqual(self.server.control("POST", "options", {"created_at_format": "x"})[0], 400)
        self.server.control("POST", "reset")
        self.assertEqual(self.server.control("GET", "options")[1],
                         {"created_at_format": "micro", "last_used_format": "date",
                          "secret_prefix": None, "requests_per_minute": None,
                          "completion_tokens": 16, "tokens_per_second": None,
                          "time_to_first_token": 0})

    def test_secret_prefix_marks_every_issued_secret(self):
        sentinel = "SENTINEL-" + secrets.token_hex(8)
        status, options = self.server.control("POST", "options", {"secret_prefix": sentinel})
        self.assertEqual((status, options["secret_prefix"]), (200, sentinel))
        created = self.create()
        seeded = self.server.control("POST", "keys", {"name": "seeded"})[1]
        for key in (created, seeded):
            self.assertTrue(key["key"].startswith(sentinel))
            self.assertRegex(key["key"][len(sentinel):], SECRET)
            self.assertEqual(key["hidden_key"], key["key"][:4] + "..." + key["key"][-4:])
            self.assertEqual(self.server.call("GET", "/v1/models", token=key["key"])[0], 200)
        # Never shown again, and redacted from the request log like any secret.
        self.assertNotIn(sentinel, json.dumps(self.list_keys()))
        self.assertNotIn(sentinel, json.dumps(self.control_keys()))
        self.server.call("GET", f"/v1/admin/api-keys?name={created['key']}")
        log = json.dumps(self.log())
        self.assertNotIn(sentinel, log)
        self.assertEqual(log.count("[REDACTED]"), 1)
        # null goes back to plain secrets; bad prefixes are refused.
        self.server.control("POST", "options", {"secret_prefix": None})
        self.assertRegex(self.create()["key"], SECRET)
        for bad in ["", "has space", "x" * 65, "slash/", 7]:
            with self.subTest(prefix=bad):
                self.assertEqual(self.server.control("POST", "options", {"secret_prefix": bad})[0], 400)
        self.server.control("POST", "options", {"secret_prefix": sentinel})
        self.server.control("POST", "reset")
        self.assertRegex(self.create()["key"], SECRET)

    def test_seed_key_with_a_given_key_id(self):
        key_id = str(uuid.uuid4())
        seeded = self.server.control("POST", "keys", {"key_id": key_id.upper(), "name": "keyrotd/a/g1/x"})[1]
        self.assertEqual(seeded["key_id"], key_id)
        self.assertEqual([k["key_id"] for k in self.list_keys()], [key_id])
        self.assertEqual(self.server.call("DELETE", f"/v1/admin/api-keys/{key_id}")[0], 200)
        self.assertEqual(self.server.control("POST", "keys", {"key_id": key_id})[0], 400, "taken")
        self.assertEqual(self.server.control("POST", "keys", {"key_id": "not-a-uuid"})[0], 400)

    def test_secret_in_request_line_is_redacted(self):
        key = self.create()
        self.server.call("GET", f"/v1/admin/api-keys?name={key['key']}")
        self.server.call("GET", f"/v1/admin/api-keys/{key['key']}")
        self.server.call("GET", f"/v1/{self.server.admin_key}")
        log = json.dumps(self.log())
        self.assertNotIn(key["key"], log)
        self.assertNotIn(self.server.admin_key, log)
        self.assertEqual(log.count("[REDACTED]"), 3)


class RateLimitTests(ServerTestCase):

    BODY = {"name": "limited", "workspace_uuid": WORKSPACE, "user_id": USER}

    def limit(self, rpm):
        status, out = self.server.control("POST", "options", {"requests_per_minute": rpm})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["requests_per_minute"], rpm)

    def test_admin_calls_beyond_the_limit_get_429_with_retry_after(self):
        self.limit(3)
        key = self.create()
        self.list_keys()
        self.assertEqual(self.server.call("GET", "/v1/admin/spend-limit")[0], 200)
        status, out, resp = self.server.call("POST", "/v1/admin/api-keys", self.BODY)
        self.assertEqual((status, out), (429, {"detail": "Rate limit exceeded"}))
        self.assertTrue(1 <= int(resp.getheader("Retry-After")) <= 60, resp.getheader("Retry-After"))
        status, _, _ = self.server.call("DELETE", f"/v1/admin/api-keys/{key['key_id']}")
        self.assertEqual(status, 429)
        self.assertEqual(len(self.control_keys()), 1, "a refused create stores nothing")
        self.assertIsNone(self.control_keys()[0]["deleted_at"], "a refused delete deletes nothing")
        log = self.log()
        self.assertEqual([(e["status"], e["fault"]) for e in log],
                         [(200, None)] * 3 + [(429, "rate_limit")] * 2)

    def test_only_admin_authenticated_admin_calls_count(self):
        self.limit(1)
        key = self.create()
        for _ in range(3):
            self.assertEqual(self.server.call("GET", "/v1/models", token=key["key"])[0], 200)
            self.assertEqual(self.server.call("GET", "/v1/admin/api-keys", token="wrong")[0], 401)
            self.assertEqual(self.server.control("GET", "health")[0], 200)
        self.assertEqual(self.server.call("GET", "/v1/admin/api-keys")[0], 429)

    def test_a_refused_call_consumes_no_fault_and_is_not_counted(self):
        self.limit(1)
        self.add_fault("/v1/admin/api-keys", {"status": 500})
        self.assertEqual(self.server.call("GET", "/v1/admin/api-keys")[0], 200)
        for _ in range(3):
            self.assertEqual(self.server.call("POST", "/v1/admin/api-keys", self.BODY)[0], 429)
        self.assertEqual(len(self.server.control("GET", "faults")[1]), 1)
        self.limit(2)
        self.assertEqual(self.server.call("POST", "/v1/admin/api-keys", self.BODY)[0], 500,
                         "the fault is still there; refused calls did not fill the window")

    def test_the_window_slides(self):
        self.limit(2)
        self.list_keys()
        time.sleep(1.5)
        self.list_keys()
        status, _, resp = self.server.call("GET", "/v1/admin/api-keys")
        self.assertEqual(status, 429)
        self.assertIn(int(resp.getheader("Retry-After")), (58, 59), "until the first call is 60 s old")
        self.limit(1)
        status, _, resp = self.server.call("GET", "/v1/admin/api-keys")
        self.assertEqual(int(resp.getheader("Retry-After")), 60, "until the second call is 60 s old")
        self.limit(None)
        for _ in range(5):
            self.list_keys()
        self.limit(1)
        self.assertEqual(self.server.call("GET", "/v1/admin/api-keys")[0], 200, "no limit forgets the window")

    def test_bad_limits(self):
        for value in (0, -5, 1.5, "60", True):
            with self.subTest(value=value):
                self.assertEqual(self.server.control("POST", "options", {"requests_per_minute": value})[0], 400)


INFERENCE_PATHS = {
    "/v1/chat/completions": {"model": "mistral-small-latest",
                             "messages": [{"role": "user", "content": "tell me a story"}]},
    "/v1/fim/completions": {"model": "codestral-latest", "prompt": "def add(a, b):",
                            "suffix": "return a + b"},
    "/v1/embeddings": {"model": "mistral-embed", "input": ["one two", "three"]},
    "/v1/moderations": {"model": "mistral-moderation-latest", "input": ["is this fine", "ok"]},
    "/v1/chat/moderations": {"model": "mistral-moderation-latest",
                             "input": [{"role": "user", "content": "is this fine"}]},
    "/v1/classifications": {"model": "mistral-moderation-latest", "input": "classify me"},
    "/v1/chat/classifications": {"model": "mistral-moderation-latest",
                                 "input": [[{"role": "user", "content": "a"}],
                                           [{"role": "user", "content": "b c"}]]},
}
MODEL_IDS = {"mistral-large-latest", "mistral-small-latest", "codestral-latest", "mistral-embed",
             "mistral-moderation-latest", "open-mistral-nemo"}
BASE_MODEL_CARD = {"id", "object", "created", "owned_by", "capabilities", "name", "description",
                   "max_context_length", "aliases", "deprecation",
                   "deprecation_replacement_model", "default_model_temperature", "internal",
                   "type"}
USAGE = {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_audio_seconds"}
UNAUTHORIZED = {"detail": "Unauthorized"}


class Stream:
    """A streamed answer read event by event: status, headers, the parsed chunks, whether
    "data: [DONE]" came, how it ended, and when each chunk arrived."""

    def __init__(self, server, path, body, token, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        data = json.dumps(body).encode()
        self.started = time.monotonic()
        self.conn.request("POST", path, body=data, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        self.headers_at = time.monotonic()
        self.status = self.resp.status
        self.chunks, self.arrivals, self.done, self.error = [], [], False, None
        self.body_length = len(data)

    def read_all(self, limit=None):
        """Reads events until [DONE], the end, an error, or `limit` chunks."""
        try:
            while limit is None or len(self.chunks) < limit:
                line = self.resp.readline()
                if not line:  # http.client ends an unterminated chunked body quietly
                    self.error = EOFError("the stream ended before data: [DONE]")
                    break
                line = line.rstrip(b"\n")
                if not line:
                    continue
                self.assert_data(line)
                payload = line[len(b"data: "):]
                if payload == b"[DONE]":
                    self.done = True
                    self.assert_end()
                    break
                self.chunks.append(json.loads(payload))
                self.arrivals.append(time.monotonic())
        except (http.client.IncompleteRead, ConnectionError) as e:
            self.error = e
        return self

    @staticmethod
    def assert_data(line):
        assert line.startswith(b"data: "), line

    def assert_end(self):
        assert self.resp.read().strip() == b"", "nothing after [DONE]"

    def content(self):
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in self.chunks)

    def close(self):
        self.conn.close()


class InferenceTestCase(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.key = self.create()

    def infer(self, path, body, token=None, **kw):
        token = self.key["key"] if token is None else token
        return self.server.call("POST", path, body, token=token, **kw)

    def stream(self, body, path="/v1/chat/completions", token=None, **kw):
        stream = Stream(self.server, path, {**body, "stream": True},
                        self.key["key"] if token is None else token, **kw)
        self.addCleanup(stream.close)
        return stream

    def chat(self, text="tell me a story", **extra):
        return {"model": "mistral-small-latest",
                "messages": [{"role": "system", "content": "be brief"},
                             {"role": "user", "content": text}], **extra}

    def options(self, **values):
        status, out = self.server.control("POST", "options", values)
        self.assertEqual(status, 200, out)

    def wait_for_log(self, predicate, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.log() if predicate(e)]
            if found:
                return found
            time.sleep(0.02)
        self.fail("no such log entry")


class InferenceTests(InferenceTestCase):

    def test_chat_completion_is_shaped_like_mistral_and_deterministic(self):
        body = self.chat("the quick brown fox", max_tokens=6)
        status, out, resp = self.infer("/v1/chat/completions", body)
        self.assertEqual(status, 200, out)
        self.assertTrue({"id", "object", "model", "usage", "created", "choices"} <= set(out))
        self.assertEqual((out["object"], out["model"]), ("chat.completion", "mistral-small-latest"))
        self.assertIsInstance(out["created"], int)
        choice = out["choices"][0]
        self.assertEqual((choice["index"], choice["finish_reason"]), (0, "length"))
        self.assertEqual(choice["message"]["role"], "assistant")
        self.assertEqual(choice["message"]["content"], "the quick brown fox the quick",
                         "the last user message's words, one per token")
        usage = out["usage"]
        self.assertEqual(set(usage), USAGE)
        self.assertEqual((usage["prompt_tokens"], usage["completion_tokens"]), (6, 6))
        self.assertEqual(usage["total_tokens"], 12)
        self.assertLessEqual(usage["prompt_tokens"], len(json.dumps(body).encode()))
        again = self.infer("/v1/chat/completions", body)[1]
        self.assertEqual(again["choices"], out["choices"])
        self.assertNotEqual(again["id"], out["id"])
        default = self.infer("/v1/chat/completions", self.chat("x"))[1]
        self.assertEqual(default["usage"]["completion_tokens"], 16)
        self.assertEqual(default["choices"][0]["finish_reason"], "stop")

    def test_prompt_tokens_never_exceed_the_body_length(self):
        for text in ("a " * 500, "\u00e9 " * 50, "x", "  ", "one\ttwo\nthree"):
            for path, body in (("/v1/chat/completions", self.chat(text)),
                               ("/v1/fim/completions", {"model": "codestral-latest",
                                                        "prompt": text}),
                               ("/v1/embeddings", {"model": "mistral-embed", "input": text})):
                with self.subTest(path=path, text=text[:10]):
                    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
                    status, resp, data = self.server.raw("POST", path, raw, token=self.key["key"])
                    self.assertEqual(status, 200, data)
                    tokens = json.loads(data)["usage"]["prompt_tokens"]
                    self.assertGreaterEqual(tokens, 1)
                    self.assertLessEqual(tokens, len(raw))

    def test_streamed_chat_sends_one_chunk_per_token_usage_last_then_done(self):
        body = self.chat("alpha beta", max_tokens=5)
        stream = self.stream(body).read_all()
        self.assertEqual(stream.status, 200)
        self.assertEqual(stream.resp.getheader("Content-Type"), "text/event-stream")
        self.assertEqual(stream.resp.getheader("Transfer-Encoding"), "chunked")
        self.assertTrue(stream.done, stream.error)
        self.assertEqual(len(stream.chunks), 5)
        ids = {c["id"] for c in stream.chunks}
        self.assertEqual(len(ids), 1)
        for chunk in stream.chunks:
            self.assertEqual(chunk["object"], "chat.completion.chunk")
            self.assertEqual(chunk["model"], "mistral-small-latest")
            self.assertEqual(chunk["choices"][0]["index"], 0)
        self.assertEqual(stream.chunks[0]["choices"][0]["delta"]["role"], "assistant")
        self.assertEqual([c["choices"][0]["finish_reason"] for c in stream.chunks],
                         [None] * 4 + ["length"])
        self.assertEqual(["usage" in c for c in stream.chunks], [False] * 4 + [True])
        self.assertEqual(stream.chunks[-1]["usage"],
                         {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9,
                          "prompt_audio_seconds": None})
        plain = self.infer("/v1/chat/completions", body)[1]
        self.assertEqual(stream.content(), plain["choices"][0]["message"]["content"])
        # The connection stays usable after the stream (keep-alive).
        stream.conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {self.key['key']}"})
        again = stream.conn.getresponse()
        self.assertEqual(again.status, 200)
        again.read()
        zero = self.stream(self.chat(max_tokens=0)).read_all()
        self.assertTrue(zero.done)
        self.assertEqual(len(zero.chunks), 1, "no token: one chunk still carries the usage")
        self.assertEqual(zero.chunks[0]["usage"]["completion_tokens"], 0)

    def test_fim_streams_and_answers(self):
        body = {"model": "codestral-latest", "prompt": "def add(a, b):", "suffix": "return",
                "max_tokens": 3}
        status, out, _ = self.infer("/v1/fim/completions", body)
        self.assertEqual(status, 200, out)
        self.assertEqual(out["object"], "chat.completion")
        self.assertEqual(out["choices"][0]["message"]["content"], "def add(a, b):")
        self.assertEqual(out["usage"]["prompt_tokens"], 4)
        stream = self.stream(body, path="/v1/fim/completions").read_all()
        self.assertTrue(stream.done)
        self.assertEqual(stream.content(), "def add(a, b):")
        self.assertEqual(stream.chunks[-1]["usage"]["completion_tokens"], 3)

    def test_embeddings_classifiers_and_their_usage(self):
        status, out, _ = self.infer("/v1/embeddings", INFERENCE_PATHS["/v1/embeddings"])
        self.assertEqual(status, 200, out)
        self.assertEqual((out["object"], out["model"]), ("list", "mistral-embed"))
        self.assertEqual([d["index"] for d in out["data"]], [0, 1])
        self.assertEqual({len(d["embedding"]) for d in out["data"]}, {1024})
        self.assertEqual(out["usage"]["prompt_tokens"], 3)
        self.assertEqual(out["usage"]["completion_tokens"], 0)
        small = self.infer("/v1/embeddings", {"model": "mistral-embed", "input": "one two",
                                              "output_dimension": 8})[1]
        self.assertEqual(small["data"][0]["embedding"], out["data"][0]["embedding"][:8],
                         "deterministic per text")
        encoded = self.infer("/v1/embeddings", {"model": "mistral-embed", "input": "one two",
                                                "output_dimension": 8,
                                                "encoding_format": "base64"})[1]
        import base64
        import struct
        floats = struct.unpack("<8f", base64.b64decode(encoded["data"][0]["embedding"]))
        for a, b in zip(floats, small["data"][0]["embedding"]):
            self.assertAlmostEqual(a, b, places=5)
        for path in ("/v1/moderations", "/v1/chat/moderations"):
            with self.subTest(path=path):
                status, out, _ = self.infer(path, INFERENCE_PATHS[path])
                self.assertEqual(status, 200, out)
                self.assertEqual(set(out), {"id", "model", "results", "usage"})
                for result in out["results"]:
                    self.assertEqual(set(result), {"categories", "category_scores"})
                    self.assertIn("selfharm", result["categories"])
        self.assertEqual(len(self.infer("/v1/moderations",
                                        INFERENCE_PATHS["/v1/moderations"])[1]["results"]), 2)
        for path, count in (("/v1/classifications", 1), ("/v1/chat/classifications", 2)):
            with self.subTest(path=path):
                status, out, _ = self.infer(path, INFERENCE_PATHS[path])
                self.assertEqual(status, 200, out)
                self.assertEqual(len(out["results"]), count)
                for result in out["results"]:
                    for target in result.values():
                        self.assertEqual(set(target), {"scores"})

    def test_models_list_and_retrieve(self):
        status, out, _ = self.server.call("GET", "/v1/models", token=self.key["key"])
        self.assertEqual(status, 200)
        self.assertEqual({c["id"] for c in out["data"]}, MODEL_IDS)
        for card in out["data"]:
            self.assertEqual(set(card), BASE_MODEL_CARD)
            self.assertEqual((card["object"], card["type"]), ("model", "base"))
        status, card, _ = self.server.call("GET", "/v1/models/codestral-latest",
                                           token=self.key["key"])
        self.assertEqual(status, 200)
        self.assertEqual(card["id"], "codestral-latest")
        self.assertTrue(card["capabilities"]["completion_fim"])
        self.assertEqual(self.server.call("GET", "/v1/models/codestral-2501",
                                          token=self.key["key"])[1]["id"], "codestral-latest")
        status, out, _ = self.server.call("GET", "/v1/models/no-such-model", token=self.key["key"])
        self.assertEqual(status, 404)
        self.assertEqual(out["object"], "error")

    def test_bad_requests(self):
        cases = [
            ("/v1/chat/completions", {"messages": []}, 422, [("body", "model")]),
            ("/v1/chat/completions", self.chat(stream_options={"include_usage": True}), 422,
             [("body", "stream_options")]),
            ("/v1/chat/completions", self.chat(max_tokens=-1), 422, [("body", "max_tokens")]),
            ("/v1/chat/completions", {"model": "mistral-small-latest", "messages": "hi"}, 422,
             [("body", "messages")]),
            ("/v1/fim/completions", {"model": "codestral-latest"}, 422, [("body", "prompt")]),
            ("/v1/embeddings", {"model": "mistral-embed", "input": 3}, 422, [("body", "input")]),
        ]
        for path, body, code, locs in cases:
            with self.subTest(path=path, body=body):
                status, out, _ = self.infer(path, body)
                self.assertEqual(status, code, out)
                self.assert_validation(out, *locs)
        for path, body in (("/v1/chat/completions", self.chat(model="no-such-model")),
                           ("/v1/fim/completions", {"model": "mistral-small-latest",
                                                    "prompt": "x"}),
                           ("/v1/embeddings", {"model": "mistral-small-latest", "input": "x"}),
                           ("/v1/moderations", {"model": "mistral-embed", "input": "x"})):
            with self.subTest(path=path, model=body["model"]):
                status, out, _ = self.infer(path, body)
                self.assertEqual(status, 400)
                self.assertEqual(out, {"object": "error", "message": f"Invalid model: {body['model']}",
                                       "type": "invalid_model", "param": None, "code": "1500"})
        status, _, data = self.server.raw("POST", "/v1/chat/completions", b"{not json",
                                          token=self.key["key"])
        self.assertEqual(status, 422)
        status, out, _ = self.server.call("GET", "/v1/chat/completions", token=self.key["key"])
        self.assertEqual(status, 405)

    def test_only_live_issued_keys_are_accepted(self):
        deleted = self.create(name="deleted")
        self.assertEqual(self.server.call("DELETE", f"/v1/admin/api-keys/{deleted['key_id']}")[0], 200)
        seeded = self.server.control("POST", "keys", {"name": "seeded"})[1]
        tokens = {"deleted": deleted["key"], "unknown": "x" * 32, "admin": self.server.admin_key,
                  "empty": ""}
        for path, body in INFERENCE_PATHS.items():
            for label, token in tokens.items():
                with self.subTest(path=path, token=label):
                    status, out, resp = self.infer(path, body, token=token)
                    self.assertEqual(status, 401)
                    self.assertEqual(out, UNAUTHORIZED)
                    self.assertEqual(resp.getheader("WWW-Authenticate"), "Bearer")
            with self.subTest(path=path, token="seeded"):
                self.assertEqual(self.infer(path, body, token=seeded["key"])[0], 200)
        refused = [e for e in self.log() if e["status"] == 401]
        by_deleted = [e for e in refused if e["auth"] == f"key:{deleted['key_id']}"]
        self.assertEqual(len(by_deleted), len(INFERENCE_PATHS))
        self.assertTrue(all(e["key_deleted"] is True and e["key_id"] == deleted["key_id"]
                            for e in by_deleted))
        others = [e for e in refused if e not in by_deleted]
        self.assertTrue(all(e["key_deleted"] is None and e["key_id"] is None for e in others))
        served = [e for e in self.log() if e["status"] == 200 and e["path"] in INFERENCE_PATHS]
        self.assertTrue(all(e["key_id"] == seeded["key_id"] and e["key_deleted"] is False
                            for e in served))
        text = json.dumps(self.log()) + Path(self.server.log_path).read_text()
        for secret in (deleted["key"], seeded["key"], self.key["key"], self.server.admin_key):
            self.assertNotIn(secret, text)

    def test_the_log_records_each_inference_request(self):
        self.infer("/v1/chat/completions", self.chat("a b c", max_tokens=2))
        self.stream(self.chat("a b c", max_tokens=3)).read_all()
        self.infer("/v1/embeddings", {"model": "mistral-embed", "input": "a b"})
        self.infer("/v1/chat/completions", self.chat(model="nope"))
        log = self.log()
        for e in log:
            self.assertEqual(set(e), LOG_ENTRY)
        rows = [(e["path"], e["status"], e["model"], e["stream"], e["prompt_tokens"],
                 e["completion_tokens"], e["chunks"], e["stream_end"], e["key_id"],
                 e["key_deleted"]) for e in log[1:]]
        key = self.key["key_id"]
        self.assertEqual(rows, [
            ("/v1/chat/completions", 200, "mistral-small-latest", False, 5, 2, None, None, key, False),
            ("/v1/chat/completions", 200, "mistral-small-latest", True, 5, 3, 3, "done", key, False),
            ("/v1/embeddings", 200, "mistral-embed", False, 2, 0, None, None, key, False),
            ("/v1/chat/completions", 400, "nope", False, None, None, None, None, key, False),
        ])
        self.assertIsNone(log[0]["model"], "admin requests carry no inference facts")


class InferencePacingTests(InferenceTestCase):

    def test_token_rate_and_time_to_first_token(self):
        self.options(completion_tokens=5, tokens_per_second=20, time_to_first_token=0.3)
        stream = self.stream(self.chat()).read_all()
        self.assertTrue(stream.done)
        self.assertEqual(len(stream.chunks), 5)
        self.assertLess(stream.headers_at - stream.started, 0.25, "headers come at once")
        self.assertGreaterEqual(stream.arrivals[0] - stream.started, 0.3)
        self.assertGreaterEqual(stream.arrivals[-1] - stream.arrivals[0], 4 / 20 - 0.01)
        started = time.monotonic()
        status, out, _ = self.infer("/v1/chat/completions", self.chat())
        self.assertEqual(out["usage"]["completion_tokens"], 5)
        self.assertGreaterEqual(time.monotonic() - started, 0.3 + 4 / 20 - 0.01,
                                "a non-streamed answer takes as long as the stream")
        self.options(tokens_per_second=None, time_to_first_token=0)
        started = time.monotonic()
        self.stream(self.chat()).read_all()
        self.assertLess(time.monotonic() - started, 0.25)
        for bad in ({"tokens_per_second": 0}, {"completion_tokens": -1},
                    {"time_to_first_token": "1"}):
            with self.subTest(bad=bad):
                self.assertEqual(self.server.control("POST", "options", bad)[0], 400)

    def test_a_client_leaving_mid_stream_is_logged(self):
        self.options(completion_tokens=50, tokens_per_second=20)
        stream = self.stream(self.chat()).read_all(limit=2)
        self.assertEqual(len(stream.chunks), 2)
        stream.conn.sock.shutdown(socket.SHUT_RDWR)
        stream.close()
        entry = self.wait_for_log(lambda e: e["stream_end"] is not None)[0]
        self.assertEqual((entry["status"], entry["stream_end"]), (200, "client_closed"))
        self.assertLess(entry["chunks"], 50)

    def test_a_thousand_concurrent_streams(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096 <= hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
        # Each stream takes 3 s (4 tokens, one a second after the first).
        self.options(completion_tokens=4, tokens_per_second=1)
        count = 1000
        results = [None] * count
        barrier = threading.Barrier(count + 1)

        def run(i):
            try:
                barrier.wait(timeout=60)
                stream = Stream(self.server, "/v1/chat/completions",
                                {**self.chat(f"client {i}"), "stream": True}, self.key["key"],
                                timeout=60).read_all()
                results[i] = (stream.status, stream.done, stream.content())
                stream.close()
            except Exception as e:  # noqa: BLE001
                results[i] = e

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
        for t in threads:
            t.start()
        started = time.monotonic()
        barrier.wait(timeout=60)
        for t in threads:
            t.join(120)
        elapsed = time.monotonic() - started
        failures = [r for r in results if not (isinstance(r, tuple) and r[:2] == (200, True))]
        self.assertEqual(failures[:3], [], f"{len(failures)} of {count} failed")
        self.assertEqual(results[7][2], "client 7 client 7")
        self.assertLess(elapsed, 60, "the streams ran side by side")
        done = [e for e in self.log() if e["stream_end"] == "done"]
        self.assertEqual(len(done), count)
        arrivals = sorted(dt.datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
                          for e in done)
        self.assertLess((arrivals[-1] - arrivals[0]).total_seconds(), 3,
                        "the last stream began before the first ended: all were open at once")


class InferenceFaultTests(InferenceTestCase):

    def test_status_faults_on_inference_paths(self):
        for code in (401, 429, 500, 503):
            with self.subTest(code=code):
                self.add_fault("/v1/chat/completions", {"status": code}, times=2)
                statuses = [self.infer("/v1/chat/completions", self.chat())[0] for _ in range(3)]
                self.assertEqual(statuses, [code, code, 200])
        self.add_fault("/v1/*", {"status": 429, "retry_after": 2})
        status, out, resp = self.infer("/v1/embeddings", INFERENCE_PATHS["/v1/embeddings"])
        self.assertEqual((status, resp.getheader("Retry-After")), (429, "2"))
        stream = self.stream(self.chat())
        self.add_fault("/v1/chat/completions", {"status": 500})
        faulted = self.stream(self.chat())
        self.assertEqual(faulted.status, 500)
        self.assertEqual(stream.status, 200)
        entries = [e for e in self.log() if e["fault"]]
        self.assertTrue(all(e["key_id"] == self.key["key_id"] for e in entries),
                        "faulted inference requests still name the key used")
        self.assertEqual(entries[-1]["stream"], True)
        self.assertEqual(entries[-1]["model"], "mistral-small-latest")

    def test_drop_after_chunks(self):
        self.add_fault("/v1/chat/completions", {"drop_after_chunks": 2})
        stream = self.stream(self.chat(max_tokens=6)).read_all()
        self.assertEqual(stream.status, 200)
        self.assertEqual(len(stream.chunks), 2)
        self.assertFalse(stream.done)
        self.assertIsInstance(stream.error, EOFError)
        self.add_fault("/v1/chat/completions", {"drop_after_chunks": 1})
        dropped = self.raw_stream(self.chat())
        self.assertTrue(dropped.endswith(b"\n\n\r\n"), dropped[-20:])
        self.assertEqual(dropped.count(b"data: "), 1)
        whole = self.raw_stream(self.chat())
        self.assertTrue(whole.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), whole[-40:])
        self.add_fault("/v1/chat/completions", {"drop_after_chunks": 0})
        stream = self.stream(self.chat()).read_all()
        self.assertEqual((stream.status, stream.chunks, stream.done), (200, [], False))
        self.add_fault("/v1/chat/completions", {"drop_after_chunks": 1})
        with self.assertRaises(CONNECTION_LOST):
            self.infer("/v1/chat/completions", self.chat())
        entries = [e for e in self.log() if e["fault"]]
        self.assertEqual([(e["chunks"], e["stream_end"]) for e in entries],
                         [(2, "dropped"), (1, "dropped"), (0, "dropped"), (None, None)])
        self.assertEqual(self.stream(self.chat(max_tokens=2)).read_all().done, True)
        self.assertEqual(self.server.control("POST", "faults", {
            "path": "/x", "fault": {"drop_after_chunks": -1}})[0], 400)

    def raw_stream(self, body):
        """Every byte of a streamed answer, read off the socket until the server closes it
        or sends the last chunk (the chunked framing is not undone)."""
        data = json.dumps({**body, "stream": True}).encode()
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                         b"Authorization: Bearer " + self.key["key"].encode() + b"\r\n"
                         b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
            received = b""
            while not received.endswith(b"\r\n0\r\n\r\n"):
                part = sock.recv(65536)
                if not part:
                    break
                received += part
        return received

    def test_hang_then_close_and_delay(self):
        self.add_fault("/v1/chat/completions", {"delay": 0.5, "drop": True})
        started = time.monotonic()
        with self.assertRaises(CONNECTION_LOST):
            self.infer("/v1/chat/completions", self.chat())
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        self.add_fault("/v1/chat/completions", {"delay": 3})
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=0.5)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(self.chat()),
                     headers={"Authorization": f"Bearer {self.key['key']}"})
        with self.assertRaises(socket.timeout):
            conn.getresponse()
        conn.close()
        started = time.monotonic()
        self.add_fault("/v1/embeddings", {"delay": 0.3})
        self.assertEqual(self.infer("/v1/embeddings", INFERENCE_PATHS["/v1/embeddings"])[0], 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)


SDK_CHECK = Path(__file__).resolve().parent.parent.parent / "Tests" / "GatewaySDK" / "sdk_check.py"
SDK_PYTHON = Path(os.environ.get("KEYROTD_TEST_VENV", "/opt/keyrotd-test-venv")) / "bin" / "python"


class SdkCheckTests(InferenceTestCase):
    """Tests/GatewaySDK/sdk_check.py, the official SDKs' harness, against this server."""

    def sdk_check(self, *args, token=None):
        self.assertTrue(SDK_PYTHON.exists(), f"{SDK_PYTHON} missing: run scripts/setup")
        token_file = os.path.join(self.server.dir, "sdk-token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write((token or self.key["key"]) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SDK_CHECK_")}
        env.update(SDK_CHECK_BASE_URL=f"http://127.0.0.1:{self.server.port}",
                   SDK_CHECK_API_KEY_FILE=token_file)
        result = subprocess.run([str(SDK_PYTHON), str(SDK_CHECK), *args], env=env,
                                capture_output=True, text=True, timeout=120)
        self.assertNotIn(token or self.key["key"], result.stdout + result.stderr)
        return result.returncode, result.stdout.splitlines(), result.stderr

    def test_every_check_passes_with_both_sdks(self):
        code, lines, err = self.sdk_check("--expect-models", ",".join(sorted(MODEL_IDS)))
        self.assertEqual(code, 0, "\n".join(lines) + err)
        self.assertEqual([" ".join(line.split()[:3]) for line in lines[:-1]], [
            "ok mistralai chat:", "ok mistralai stream:", "ok mistralai embeddings:",
            "ok mistralai fim:", "ok mistralai moderations:", "ok mistralai models:",
            "ok openai chat:", "ok openai stream:", "ok openai embeddings:", "skip openai fim:",
            "skip openai moderations:", "ok openai models:"])
        self.assertEqual(lines[-1], "10 passed, 0 failed, 2 skipped")
        streamed = [e for e in self.log() if e["stream"]]
        self.assertEqual([e["stream_end"] for e in streamed], ["done", "done"])

    def test_expectations_fail_and_hold(self):
        code, lines, _ = self.sdk_check("--checks", "models", "--expect-models", "mistral-small-latest")
        self.assertEqual(code, 1)
        self.assertTrue(all(line.startswith("FAIL") for line in lines[:-1]), lines)
        self.assertEqual(self.sdk_check("--checks", "none", "--expect-forbidden",
                                        "mistral-large-latest")[0], 1, "no 403 came")
        message = "model mistral-large-latest is not allowed for role analyst"
        self.add_fault("/v1/chat/completions", {"status": 403, "body": {
            "object": "error", "message": message, "type": "model_not_allowed", "param": None,
            "code": "model_not_allowed"}}, times=4)
        code, lines, err = self.sdk_check("--checks", "none", "--expect-forbidden",
                                          "mistral-large-latest", "--role", "analyst")
        self.assertEqual(code, 0, "\n".join(lines) + err)
        code, lines, _ = self.sdk_check("--checks", "none", "--expect-forbidden",
                                        "mistral-large-latest", "--role", "batch")
        self.assertEqual(code, 1, "the message must name the role")
        self.add_fault("/v1/chat/completions", {"status": 429, "retry_after": 60, "body": {
            "object": "error", "message": "monthly budget of role analyst exhausted",
            "type": "budget_exhausted", "param": None, "code": "budget_exhausted"}}, times=2)
        code, lines, err = self.sdk_check("--checks", "none", "--expect-budget-exhausted")
        self.assertEqual(code, 0, "\n".join(lines) + err)
        self.assertTrue(all("Retry-After 60" in line for line in lines[:-1]), lines)
        self.add_fault("/v1/chat/completions", {"status": 429}, times=2)
        self.assertEqual(self.sdk_check("--checks", "none", "--expect-budget-exhausted")[0], 1,
                         "a 429 that does not say budget")

    def test_a_deleted_key_is_refused(self):
        self.server.call("DELETE", f"/v1/admin/api-keys/{self.key['key_id']}")
        code, lines, _ = self.sdk_check("--checks", "chat")
        self.assertEqual(code, 1)
        self.assertIn("HTTP 401", lines[0])
        code, lines, err = self.sdk_check("--expect-unauthorized")
        self.assertEqual(code, 0, "\n".join(lines) + err)
        self.assertTrue(all(e["key_deleted"] for e in self.log() if e["path"] != "/v1/admin/api-keys"
                            and not e["path"].startswith("/v1/admin/")))


class ProcessTests(unittest.TestCase):

    def test_requests_per_minute_flag_and_reset(self):
        server = ServerProcess(extra_args=("--requests-per-minute", "2"))
        try:
            self.assertEqual(server.control("GET", "options")[1]["requests_per_minute"], 2)
            self.assertEqual([server.call("GET", "/v1/admin/api-keys")[0] for _ in range(3)], [200, 200, 429])
            server.control("POST", "options", {"requests_per_minute": None})
            self.assertEqual(server.call("GET", "/v1/admin/api-keys")[0], 200)
            server.control("POST", "reset")
            self.assertEqual(server.control("GET", "options")[1]["requests_per_minute"], 2)
            self.assertEqual([server.call("GET", "/v1/admin/api-keys")[0] for _ in range(3)], [200, 200, 429])
        finally:
            server.cleanup()
        result = subprocess.run([str(SERVER), "--port", "0", "--requests-per-minute", "0"],
                                env={**os.environ, "MISTRAL_SERVER_ADMIN_KEY": "k"}, capture_output=True,
                                text=True, timeout=10)
        self.assertEqual(result.returncode, 64)
        self.assertIn("--requests-per-minute", result.stderr)

    def test_listening_line_port_file_and_clean_stop(self):
        server = ServerProcess()
        try:
            self.assertEqual(server.stdout(), f"mistral-server listening on http://127.0.0.1:"
                                              f"{server.port}\n")
            self.assertEqual(Path(server.port_file).read_text(), str(server.port))
            self.assertEqual(os.listdir(server.dir).count("port"), 1)
            self.assertFalse([n for n in os.listdir(server.dir) if n.endswith(".tmp")])
            self.assertEqual(server.control("GET", "health"), (200, {"ok": True}))
            start = time.monotonic()
            self.assertEqual(server.stop(signal.SIGTERM), 0)
            self.assertLess(time.monotonic() - start, 2)
        finally:
            server.cleanup()

    def test_sigint_exits_zero_with_an_open_connection(self):
        server = ServerProcess()
        try:
            conn = server.connect()
            conn.request("GET", "/_control/health")
            conn.getresponse().read()
            start = time.monotonic()
            self.assertEqual(server.stop(signal.SIGINT), 0)
            self.assertLess(time.monotonic() - start, 2)
            conn.close()
        finally:
            server.cleanup()

    def test_admin_key_from_environment(self):
        server = ServerProcess(via_env=True)
        try:
            self.assertNotIn(server.admin_key, " ".join(server.args))
            self.assertEqual(server.call("GET", "/v1/admin/api-keys")[0], 200)
            self.assertEqual(server.call("GET", "/v1/admin/api-keys", token="nope")[0], 401)
        finally:
            server.cleanup()

    def run_server(self, *args, env_key=None):
        env = {k: v for k, v in os.environ.items() if k != "MISTRAL_SERVER_ADMIN_KEY"}
        if env_key is not None:
            env["MISTRAL_SERVER_ADMIN_KEY"] = env_key
        return subprocess.run([str(SERVER), *args], env=env, capture_output=True, text=True,
                              timeout=10)

    def test_refuses_without_admin_key(self):
        result = self.run_server("--port", "0")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("admin key", result.stderr)
        self.assertEqual(result.stdout, "")
        result = self.run_server("--port", "0", "--admin-key-file", "/nonexistent/key")
        self.assertNotEqual(result.returncode, 0)
        result = self.run_server("--port", "0", "--admin-key", "secret")
        self.assertNotEqual(result.returncode, 0, "no way to pass the key in argv")

    def test_refuses_non_loopback_hosts(self):
        for host in ("0.0.0.0", "192.0.2.1", "::", "example.invalid"):
            with self.subTest(host=host):
                result = self.run_server("--host", host, "--port", "0", env_key="k")
                self.assertEqual(result.returncode, 64)
                self.assertIn("non-loopback", result.stderr)
                self.assertEqual(result.stdout, "")

    def test_tls_needs_both_certificate_and_key(self):
        result = self.run_server("--port", "0", "--tls-cert", "/nonexistent/cert.pem", env_key="k")
        self.assertEqual(result.returncode, 64)
        self.assertIn("go together", result.stderr)
        result = self.run_server("--port", "0", "--tls-cert", "/nonexistent/cert.pem",
                                 "--tls-key", "/nonexistent/key.pem", env_key="k")
        self.assertEqual(result.returncode, 66)
        self.assertIn("cannot load", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_no_secret_reaches_log_stdout_or_stderr(self):
        server = ServerProcess()
        secrets_seen = [server.admin_key]
        try:
            def call(*a, **kw):
                try:
                    return server.call(*a, **kw)
                except CONNECTION_LOST + (http.client.IncompleteRead, json.JSONDecodeError):
                    return None

            body = {"name": "leak-check", "workspace_uuid": WORKSPACE, "user_id": USER}
            for _ in range(2):
                out = call("POST", "/v1/admin/api-keys", body)[1]
                secrets_seen.append(out["key"])
                call("GET", "/v1/models", token=out["key"])
            secrets_seen.append(server.control("POST", "keys", {"name": "seeded"})[1]["key"])
            for fault in ({"drop_after_create": True}, {"truncated": True}, {"malformed": True},
                          {"drop": True}, {"status": 429, "retry_after": 1}):
                server.control("POST", "faults", {"method": "POST", "path": "/v1/admin/api-keys",
                                                  "fault": fault})
                call("POST", "/v1/admin/api-keys", body)
            call("GET", "/v1/models", token=server.admin_key)
            call("GET", f"/v1/admin/api-keys?name={secrets_seen[1]}")
            call("DELETE", f"/v1/admin/api-keys/{secrets_seen[1]}")
            call("GET", "/v1/admin/api-keys", token=secrets_seen[1])
            server.raw("GET", "/v1/admin/api-keys", headers={"Authorization": "Bearer " + "x" * 5000})
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                s.sendall(b"GARBAGE\r\n\r\n")
                s.recv(4096)
            created = [v["key_id"] for v in server.control("GET", "keys")[1]]
            self.assertGreaterEqual(len(created), 5)
            for view in server.control("GET", "keys")[1]:
                self.assertEqual(server.control("PATCH", f"keys/{view['key_id']}", {})[0], 200)
            documents = {
                "log": json.dumps(server.control("GET", "log")[1]),
                "keys": json.dumps(server.control("GET", "keys")[1]),
                "faults": json.dumps(server.control("GET", "faults")[1]),
            }
            self.assertEqual(server.stop(), 0)
            documents["log file"] = Path(server.log_path).read_text()
            documents["stdout"] = server.stdout()
            documents["stderr"] = server.stderr()
            self.assertTrue(documents["log file"])
            for where, text in documents.items():
                for secret in secrets_seen:
                    self.assertNotIn(secret, text, f"a secret in the {where}")
            self.assertEqual(documents["stderr"], "")
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
