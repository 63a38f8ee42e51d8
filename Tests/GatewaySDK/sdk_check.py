#!/usr/bin/env python3
"""Checks that the official Python SDKs (mistralai and openai) work against a
Mistral-compatible endpoint: scripts/mistral-server directly, or keyrotd-gateway in
front of it. Run it with the venv scripts/setup installs:

    SDK_CHECK_BASE_URL=http://127.0.0.1:8480 SDK_CHECK_API_KEY_FILE=token \\
        /opt/keyrotd-test-venv/bin/python Tests/GatewaySDK/sdk_check.py [options]

The secret never comes from argv: SDK_CHECK_API_KEY_FILE names a file holding it
(stripped), or SDK_CHECK_API_KEY holds it. It is never printed: every line the script
prints has it replaced by [REDACTED].

Checks (--checks, default all): chat (a chat completion and its usage), stream (a
streamed chat completion: content, usage in the last chunk), embeddings, fim (mistralai
only; the openai SDK has no FIM), moderations (mistralai only: the openai SDK's are
OpenAI's shape), models (models.list(): non-empty, or exactly the --expect-models
set). Expectations for a gateway, each an extra check:
  --expect-models a,b        models.list() returns exactly these ids (both SDKs)
  --expect-forbidden MODEL   a chat completion with MODEL is refused 403, in Mistral's
                             error shape; with --role ROLE its message names the role
  --expect-budget-exhausted  a chat completion is refused 429 and the message says
                             "budget"
  --expect-unauthorized      every SDK call is refused 401 (a wrong or deleted token)

One line per check, "ok", "FAIL" or "skip", then a summary; exit 1 when any check
failed, 2 on bad usage.
"""

import argparse
import json
import os
import sys
import time

SDKS = ("mistralai", "openai")
CHECKS = ("chat", "stream", "embeddings", "fim", "moderations", "models")
REDACTED = "[REDACTED]"


class CheckFailed(Exception):
    """A check's expectation did not hold; the message says which."""


class Refusal:
    """What an SDK's HTTP error carried: status, the body's message, Retry-After."""

    def __init__(self, status, body, retry_after):
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.message = body.get("message") if isinstance(body, dict) else None
        if self.message is None and isinstance(body, dict) and isinstance(body.get("detail"), str):
            self.message = body["detail"]

    def __str__(self):
        return f"HTTP {self.status}: {json.dumps(self.body)[:300]}"


def read_secret():
    path = os.environ.get("SDK_CHECK_API_KEY_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            secret = f.read().strip()
    else:
        secret = os.environ.get("SDK_CHECK_API_KEY", "").strip()
    if not secret:
        sys.exit("sdk_check: no credential: set SDK_CHECK_API_KEY_FILE (a file holding the"
                 " token) or SDK_CHECK_API_KEY")
    return secret


def require(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_usage(usage, what):
    require(usage is not None, f"{what}: no usage")
    prompt, completion, total = usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
    require(isinstance(prompt, int) and prompt > 0, f"{what}: prompt_tokens {prompt!r}")
    require(isinstance(completion, int) and completion >= 0,
            f"{what}: completion_tokens {completion!r}")
    require(total == prompt + completion, f"{what}: total_tokens {total} != {prompt} + {completion}")
    return f"prompt {prompt}, completion {completion}"


def completion_detail(out, what):
    """A chat or FIM completion's summary (both SDKs' objects have the same fields)."""
    content = out.choices[0].message.content
    require(isinstance(content, str) and content, f"empty content {content!r}")
    return f"{len(content)} characters, " + check_usage(out.usage, what)


def stream_detail(chunks):
    """A stream's summary: it has content, and usage in its last chunk."""
    pieces, last = [], None
    for chunk in chunks:
        if chunk.choices and isinstance(chunk.choices[0].delta.content, str):
            pieces.append(chunk.choices[0].delta.content)
        last = chunk
    require(last is not None, "no chunk")
    require("".join(pieces), "no content")
    return f"{len(pieces)} chunks, usage in the last: " + check_usage(last.usage, "last chunk")


def embeddings_detail(out, count):
    require(len(out.data) == count, f"{len(out.data)} embeddings for {count} inputs")
    dims = {len(d.embedding) for d in out.data}
    require(len(dims) == 1 and min(dims) > 0, f"dimensions {sorted(dims)}")
    return f"{count} x {dims.pop()} floats, " + check_usage(out.usage, "embeddings")


class MistralSDK:
    """The checks through the official mistralai SDK."""

    name = "mistralai"

    def __init__(self, base_url, secret, timeout):
        from mistralai.client import Mistral
        from mistralai.client.errors import MistralError
        self.error_type = MistralError
        self.client = Mistral(api_key=secret, server_url=base_url, timeout_ms=int(timeout * 1000))

    def refusal(self, error):
        # A 2xx that fails the SDK's response validation is no refusal.
        if not isinstance(error, self.error_type) or error.status_code < 400:
            return None
        try:
            body = json.loads(error.body)
        except (TypeError, ValueError):
            body = error.body
        return Refusal(error.status_code, body, error.headers.get("retry-after"))

    def chat(self, model, text, max_tokens):
        return completion_detail(self.client.chat.complete(
            model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": text}]),
            "chat")

    def stream(self, model, text, max_tokens):
        events = self.client.chat.stream(model=model, max_tokens=max_tokens,
                                         messages=[{"role": "user", "content": text}])
        return stream_detail(event.data for event in events)

    def embeddings(self, model, texts):
        return embeddings_detail(self.client.embeddings.create(model=model, inputs=texts),
                                 len(texts))

    def fim(self, model, prompt, suffix, max_tokens):
        return completion_detail(self.client.fim.complete(
            model=model, prompt=prompt, suffix=suffix, max_tokens=max_tokens), "fim")

    def moderations(self, model, texts):
        out = self.client.classifiers.moderate(model=model, inputs=texts)
        require(len(out.results) == len(texts), f"{len(out.results)} results for {len(texts)} inputs")
        require(all(r.category_scores for r in out.results), "a result without scores")
        return f"{len(texts)} results"

    def models(self):
        return {m.id for m in self.client.models.list().data}


class OpenAISDK:
    """The checks through the openai SDK pointed at the Mistral-compatible base URL."""

    name = "openai"

    def __init__(self, base_url, secret, timeout):
        import openai
        self.error_type = openai.APIStatusError
        # No retries: a 429 or 5xx must reach the check, not be retried away.
        self.client = openai.OpenAI(api_key=secret, base_url=base_url.rstrip("/") + "/v1",
                                    max_retries=0, timeout=timeout)

    def refusal(self, error):
        if not isinstance(error, self.error_type):
            return None
        try:
            body = error.response.json()  # the body as sent, not the SDK's reading of it
        except ValueError:
            body = error.response.text
        return Refusal(error.status_code, body, error.response.headers.get("retry-after"))

    def chat(self, model, text, max_tokens):
        return completion_detail(self.client.chat.completions.create(
            model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": text}]),
            "chat")

    def stream(self, model, text, max_tokens):
        # No stream_options: Mistral sends usage in the last chunk unasked, and refuses
        # fields outside its schema.
        return stream_detail(self.client.chat.completions.create(
            model=model, max_tokens=max_tokens, stream=True,
            messages=[{"role": "user", "content": text}]))

    def embeddings(self, model, texts):
        return embeddings_detail(self.client.embeddings.create(model=model, input=texts),
                                 len(texts))

    fim = None  # the openai SDK has no FIM endpoint
    moderations = None  # the openai SDK reads OpenAI's moderation shape, not Mistral's

    def models(self):
        return {m.id for m in self.client.models.list().data}


class Runner:
    """Runs checks, prints one line each (secret redacted), counts failures."""

    def __init__(self, secret):
        self.secret = secret
        self.failed = 0
        self.passed = 0
        self.skipped = 0

    def say(self, line):
        print(" ".join(line.replace(self.secret, REDACTED).split()), flush=True)

    def run(self, sdk, name, action):
        started = time.monotonic()
        try:
            detail = action()
        except CheckFailed as e:
            self.failed += 1
            self.say(f"FAIL {sdk.name} {name}: {e}")
            return
        except Exception as e:  # noqa: BLE001 - any SDK error is this check's failure
            self.failed += 1
            refusal = sdk.refusal(e)
            self.say(f"FAIL {sdk.name} {name}: {refusal or type(e).__name__ + ': ' + str(e)[:300]}")
            return
        self.passed += 1
        self.say(f"ok   {sdk.name} {name}: {detail} ({time.monotonic() - started:.2f}s)")

    def skip(self, sdk, name, why):
        self.skipped += 1
        self.say(f"skip {sdk.name} {name}: {why}")


def expect_refusal(sdk, action, status, judge):
    """Runs action, which must raise an HTTP error with `status`; judge(refusal) adds
    requirements and returns the detail to print."""
    try:
        action()
    except CheckFailed:
        raise
    except Exception as e:  # noqa: BLE001
        refusal = sdk.refusal(e)
        if refusal is None:
            raise CheckFailed(f"expected HTTP {status}, got {type(e).__name__}: {str(e)[:200]}") from None
        require(refusal.status == status, f"expected HTTP {status}, got {refusal}")
        return judge(refusal)
    raise CheckFailed(f"expected HTTP {status}, the call succeeded")


def mistral_error_shape(refusal):
    body = refusal.body
    require(isinstance(body, dict), f"body is not a JSON object: {refusal}")
    require(isinstance(body.get("message"), str) and body["message"],
            f"no message in {refusal}")
    return body["message"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdk", choices=SDKS + ("both",), default="both")
    parser.add_argument("--checks", default=",".join(CHECKS),
                        help=f"comma-separated subset of {','.join(CHECKS)}, or none")
    parser.add_argument("--chat-model", default="mistral-small-latest")
    parser.add_argument("--fim-model", default="codestral-latest")
    parser.add_argument("--embed-model", default="mistral-embed")
    parser.add_argument("--moderation-model", default="mistral-moderation-latest")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=60, help="seconds per request")
    parser.add_argument("--expect-models", metavar="A,B",
                        help="models.list() must return exactly these ids")
    parser.add_argument("--expect-forbidden", metavar="MODEL", action="append", default=[],
                        help="a chat completion with MODEL must be refused 403 (repeatable)")
    parser.add_argument("--role", help="with --expect-forbidden: the 403 message names it")
    parser.add_argument("--expect-budget-exhausted", action="store_true",
                        help="a chat completion must be refused 429 for the budget")
    parser.add_argument("--expect-unauthorized", action="store_true",
                        help="every call must be refused 401")
    args = parser.parse_args(argv)

    base_url = os.environ.get("SDK_CHECK_BASE_URL", "").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        parser.error("set SDK_CHECK_BASE_URL to the endpoint, e.g. http://127.0.0.1:8480")
    checks = [] if args.checks in ("", "none") else args.checks.split(",")
    unknown = set(checks) - set(CHECKS)
    if unknown:
        parser.error(f"unknown checks {sorted(unknown)}; choose from {','.join(CHECKS)}")
    if args.expect_models is not None and "models" not in checks:
        checks.append("models")
    secret = read_secret()
    runner = Runner(secret)
    names = SDKS if args.sdk == "both" else (args.sdk,)
    sdks = [(MistralSDK if n == "mistralai" else OpenAISDK)(base_url, secret, args.timeout)
            for n in names]
    expected_models = (None if args.expect_models is None
                       else {m.strip() for m in args.expect_models.split(",") if m.strip()})
    prompt = "Say something short about key rotation"

    for sdk in sdks:
        calls = {
            "chat": lambda: sdk.chat(args.chat_model, prompt, args.max_tokens),
            "stream": lambda: sdk.stream(args.chat_model, prompt, args.max_tokens),
            "embeddings": lambda: sdk.embeddings(args.embed_model, ["first text", "second"]),
            "fim": None if sdk.fim is None else (
                lambda: sdk.fim(args.fim_model, "def add(a, b):", "    return a + b",
                                args.max_tokens)),
            "moderations": None if sdk.moderations is None else (
                lambda: sdk.moderations(args.moderation_model, ["first text", "second"])),
        }

        def models():
            ids = sdk.models()
            if expected_models is not None:
                require(ids == expected_models,
                        f"expected exactly {sorted(expected_models)}, got {sorted(ids)}"
                        f" (missing {sorted(expected_models - ids)},"
                        f" extra {sorted(ids - expected_models)})")
                return f"exactly {sorted(ids)}"
            require(ids, "empty list")
            return f"{len(ids)} models"
        calls["models"] = models

        for name in checks:
            if calls[name] is None:
                runner.skip(sdk, name, "the SDK has no such call")
            elif args.expect_unauthorized:
                runner.run(sdk, f"{name} refused", lambda action=calls[name]: expect_refusal(
                    sdk, action, 401, lambda r: f"401 {json.dumps(r.body)[:120]}"))
            else:
                runner.run(sdk, name, calls[name])

        for model in args.expect_forbidden:
            def judge(refusal, model=model):
                message = mistral_error_shape(refusal)
                if args.role:
                    require(args.role in message, f"message does not name role {args.role!r}:"
                                                  f" {message!r}")
                return f"403 {message!r}"
            runner.run(sdk, f"forbidden {model}", lambda model=model, judge=judge: expect_refusal(
                sdk, lambda: sdk.chat(model, prompt, args.max_tokens), 403, judge))

        if args.expect_budget_exhausted:
            def budget(refusal):
                message = mistral_error_shape(refusal)
                require("budget" in message.lower(), f"message does not say budget: {message!r}")
                after = f", Retry-After {refusal.retry_after}" if refusal.retry_after else ""
                return f"429 {message!r}{after}"
            runner.run(sdk, "budget exhausted", lambda: expect_refusal(
                sdk, lambda: sdk.chat(args.chat_model, prompt, args.max_tokens), 429, budget))

    runner.say(f"{runner.passed} passed, {runner.failed} failed"
               + (f", {runner.skipped} skipped" if runner.skipped else ""))
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(main())
