"""The local distributed stack's smoke test: the public API through nginx, as a customer, a
merchant and the first administrator use it, across the service processes.

    python stack_smoke.py http://127.0.0.1:8090 STACK_DIR

Each step prints one line; the first failure stops with what was expected and what came.
Standard library only.
"""

import glob
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

BASE = ""
STACK = ""


class Failed(Exception):
    pass


def call(method, path, body=None, token=None, headers=None, raw=False, url=None):
    data = None
    req_headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        req_headers["Content-Type"] = "application/json"
    if token:
        req_headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url or BASE + path, data=data, method=method, headers=req_headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    if raw:
        return status, payload
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload.decode(errors="replace")


def expect(what, status, body, want):
    if status != want:
        shown = body if isinstance(body, (dict, list)) else str(body)[:200]
        raise Failed(f"{what}: expected {want}, got {status}: {shown}")
    return body


def eventually(what, check, seconds=30):
    deadline = time.time() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise Failed(f"{what}: nothing within {seconds} s")
        time.sleep(0.2)


def step(name, fn):
    started = time.time()
    result = fn()
    print(f"    ok  {name} ({(time.time() - started) * 1000:.0f} ms)")
    return result


def sign_in(email, password):
    status, body = call("POST", "/api/identity/v1/sign-in", {"email": email, "password": password})
    return expect(f"sign-in of {email}", status, body, 200)["access_token"]


def main():
    global BASE, STACK
    BASE, STACK = sys.argv[1].rstrip("/"), sys.argv[2]
    with open(f"{STACK}/admin-password", encoding="utf-8") as f:
        admin_password = f.read().strip()
    run = uuid.uuid4().hex[:8]
    ana_email, shop_email = f"ana-{run}@example.com", f"shop-{run}@example.com"
    password = "smoke test passphrase 1"
    state = {}

    def entry_point():
        status, body = call("GET", "/nginx-health", raw=True)
        expect("nginx", status, body, 200)
        # Internal services have no route in the chart, so none here.
        status, body = call("GET", "/api/ledger/v1/accounts/x", raw=True)
        expect("the ledger is internal", status, body, 404)
        status, body = call("GET", "/api/identity/v1/jwks.json")
        expect("identity's keys", status, body, 200)

    def sign_up():
        ids = {}
        for email, kind in ((ana_email, "customer"), (shop_email, "merchant")):
            status, body = call("POST", "/api/identity/v1/sign-up", {"email": email, "password": password, "kind": kind})
            ids[kind] = expect(f"sign-up of {email}", status, body, 201)["id"]
        state["ana"], state["shop"] = sign_in(ana_email, password), sign_in(shop_email, password)
        state["admin"] = sign_in("admin@fintech.local", admin_password)
        status, me = call("GET", "/api/identity/v1/me", token=state["ana"])
        if expect("me", status, me, 200)["subject"] != ids["customer"]:
            raise Failed(f"me: {me}")
        state["ana_id"] = ids["customer"]

    def customer_and_account():
        body = {"kind": "individual", "name": "Ana Smoke", "email": ana_email, "phone": "+15550001111"}
        status, c = call("POST", "/api/accounts/v1/customers", body, token=state["ana"])
        expect("registering ana as a customer", status, c, 201)
        status, c = call("POST", f"/api/accounts/v1/customers/{state['ana_id']}/kyc", {"status": "verified"},
                         token=state["admin"])
        expect("KYC by an operator", status, c, 200)
        status, a = call("POST", "/api/accounts/v1/accounts", {"customer_id": state["ana_id"], "currency": "USD"},
                         token=state["ana"])
        state["account"] = expect("opening a USD account (accounts → ledger over HTTP)", status, a, 201)["id"]

    def top_up():
        body = {"account_id": state["account"], "amount_minor": 10_000, "currency": "USD"}
        status, p = call("POST", "/api/payments/v1/topups", body, token=state["admin"],
                         headers={"Idempotency-Key": f"smoke-{run}"})
        expect("a top-up (payments → accounts, ledger)", status, p, 201)
        status, a = call("GET", f"/api/accounts/v1/accounts/{state['account']}", token=state["ana"])
        a = expect("the account", status, a, 200)
        if a.get("balance_minor") != 10_000:
            raise Failed(f"balance after the top-up: expected 10000, got {a}")

    def contact_request_becomes_mail():
        address = f"carla-{run}@example.com"
        body = {"name": "Carla", "email": address, "subject": "Smoke", "message": "Hello from the smoke test."}
        status, r = call("POST", "/api/contact-us/v1/requests", body)
        expect("a contact request", status, r, 201)

        def mailed():
            for path in glob.glob(f"{STACK}/data/notifications/outbox/email/*.json"):
                with open(path, encoding="utf-8") as f:
                    m = json.load(f)
                if m.get("to") == address:
                    return m
            return None

        m = eventually("the confirmation e-mail (contact-us → Pub/Sub → notifications)", mailed)
        if m["subject"] != "We received your message":
            raise Failed(f"confirmation subject: {m['subject']}")

    def my_notices():
        # A sign-in now that notifications knows her (customer.created): a security alert.
        state["ana"] = sign_in(ana_email, password)

        def sent():
            status, d = call("GET", "/api/notifications/v1/me/deliveries", token=state["ana"])
            items = expect("ana's deliveries", status, d, 200)["items"]
            return items or None

        items = eventually("a message to ana (accounts and identity events → notifications)", sent)
        if any(i.get("customer_id") != state["ana_id"] for i in items):
            raise Failed(f"someone else's deliveries among ana's: {items}")

    def statement_link():
        month = time.strftime("%Y-%m", time.gmtime())
        year, mon = int(month[:4]), int(month[5:])
        last = f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"
        # The account must be known to statements (accounts → Pub/Sub → statements) first.
        def made():
            status, s = call("POST", "/api/statements/v1/statements", {"account_id": state["account"], "month": last},
                             token=state["ana"])
            return s if status == 201 else None

        s = eventually("last month's statement (statements → ledger over HTTP → bucket)", made)
        link = s["links"]["pdf"]
        if "X-Goog-Signature=" not in link:
            raise Failed(f"not a signed link: {link}")
        status, pdf = call("GET", "", raw=True, url=link)
        if status != 200 or not pdf.startswith(b"%PDF-"):
            raise Failed(f"the signed link: {status} {pdf[:40]!r}")

    def webhooks_guard():
        body = {"url": "https://169.254.169.254/latest/meta-data/", "events": ["payment.captured"]}
        status, p = call("POST", "/api/webhooks/v1/endpoints", body, token=state["shop"])
        p = expect("the metadata server as a webhook URL", status, p, 422)
        if p["errors"][0]["code"] != "url_not_allowed":
            raise Failed(f"webhook refusal: {p}")
        status, p = call("POST", "/api/webhooks/v1/endpoints", body, token=state["ana"])
        expect("webhooks for a customer", status, p, 403)

    def sms_second_factor():
        # A user of its own: once SMS is on, a password alone no longer signs in.
        email, phone = f"cy-{run}@example.com", "+15550002222"
        status, body = call("POST", "/api/identity/v1/sign-up", {"email": email, "password": password})
        expect(f"sign-up of {email}", status, body, 201)
        token = sign_in(email, password)

        def code_sent(after):
            def latest():
                for path in sorted(glob.glob(f"{STACK}/data/identity/outbox/sms/*.json"), reverse=True):
                    with open(path, encoding="utf-8") as f:
                        message = json.load(f)
                    if message["to"] == phone and path not in after:
                        return path, message["body"].split("code is ")[1][:6]
                return None
            return eventually("the SMS with the code", latest)

        sent_before = set(glob.glob(f"{STACK}/data/identity/outbox/sms/*.json"))
        status, body = call("POST", "/api/identity/v1/mfa/sms", {"phone": phone}, token=token)
        expect("SMS enrolment", status, body, 202)
        path, code = code_sent(sent_before)
        status, body = call("POST", "/api/identity/v1/mfa/sms/confirm", {"code": code}, token=token)
        expect("the code kept in Redis", status, body, 200)
        status, challenge = call("POST", "/api/identity/v1/sign-in", {"email": email, "password": password})
        challenge = expect("sign-in with SMS on", status, challenge, 200)
        if "access_token" in challenge or "mfa_token" not in challenge:
            raise Failed(f"a second factor was expected: {challenge}")
        _, code = code_sent(sent_before | {path})
        answer = {"mfa_token": challenge["mfa_token"], "code": code}
        status, session = call("POST", "/api/identity/v1/sign-in/mfa", answer)
        expect("the sign-in code", status, session, 200)
        status, again = call("POST", "/api/identity/v1/sign-in/mfa", answer)
        expect("the same code again", status, again, 401)

    try:
        step("nginx routes the chart's public paths, not the internal ones", entry_point)
        step("sign-up and sign-in (identity)", sign_up)
        step("customer, KYC and an account (accounts, ledger)", customer_and_account)
        step("a top-up and the balance (payments, accounts, ledger)", top_up)
        step("a contact request is confirmed by e-mail (contact-us, notifications)", contact_request_becomes_mail)
        step("a sign-in alert reaches ana, who reads it (identity, accounts, notifications)", my_notices)
        step("last month's statement by signed link (statements, storage)", statement_link)
        step("webhooks refuse the metadata server (webhooks)", webhooks_guard)
        step("an SMS second factor, its codes kept in Redis (identity, Redis)", sms_second_factor)
    except Failed as e:
        print(f"smoke: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print("smoke: passed")


if __name__ == "__main__":
    main()
