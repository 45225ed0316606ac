"""Renders that must fail, with a message that names the value to fix."""

import json
import re

import pytest

from images_values import images_values
from render import template


def fails(*args, images=True):
    result = template("staging", *args, images=images)
    assert result.returncode != 0, "the render should have failed"
    return result.stderr


def test_missing_service_digest():
    err = fails("--set", "cloudSql.proxy.image.digest=sha256:" + "a" * 64, images=False)
    # The first service without a digest is named (services are checked in name order).
    assert re.search(r"services\.[a-z0-9-]+\.image\.digest is missing", err)
    assert "sha256:<64 lowercase hex>" in err


def test_missing_proxy_digest():
    # Every service's digest, none for the proxy.
    args = []
    for name, entry in images_values()["services"].items():
        args += ["--set", f"services.{name}.image.digest={entry['image']['digest']}"]
    err = fails(*args, images=False)
    assert "cloudSql.proxy.image.digest is missing" in err


@pytest.mark.parametrize("digest", ["sha256:abc", "sha256:" + "A" * 64, "sha512:" + "a" * 64, "latest"])
def test_invalid_digest(digest):
    err = fails("--set", f"services.contact-us.image.digest={digest}")
    assert "/services/contact-us/image/digest" in err
    assert "^sha256:[a-f0-9]{64}$" in err


def test_unknown_key_is_refused():
    err = fails("--set", "services.contact-us.replicaCount=3")
    assert "replicaCount" in err


def test_secret_looking_env_is_refused():
    err = fails("--set", "services.contact-us.env.FINTECH_DATABASE__CONTACT_US__URL=mysql://app:pw@db/x")
    assert "FINTECH_DATABASE__CONTACT_US__URL" in err


def test_url_with_password_in_env_is_refused():
    err = fails("--set", "services.contact-us.env.FINTECH_CONTACT_US__WEBHOOK=https://u:pw@hooks.example")
    assert "FINTECH_CONTACT_US__WEBHOOK" in err


def test_unknown_caller_is_refused():
    err = fails("--set", "services.contact-us.allowedCallers[0]=investments")
    assert '"investments", which is not a service of this release' in err


def test_service_url_to_unknown_service_is_refused():
    err = fails("--set", "services.contact-us.serviceUrls.FINTECH_CONTACT_US__INVESTMENTS_URL=investments")
    assert '"investments", which is not a service of this release' in err


def test_service_url_needs_the_callee_to_allow_the_caller():
    err = fails("--set", "services.contact-us.serviceUrls.FINTECH_CONTACT_US__LEDGER_URL=ledger")
    assert "services.ledger.allowedCallers does not list contact-us" in err


def test_service_url_name_must_end_in_url():
    err = fails("--set", "services.contact-us.serviceUrls.FINTECH_CONTACT_US__LEDGER=ledger")
    assert "FINTECH_CONTACT_US__LEDGER" in err


def test_duplicate_path_prefix_is_refused():
    extra = {"pathPrefix": "/api/contact-us", "maxBodyBytes": 65536, "timeoutSeconds": 10}
    err = fails("--set-json", "services.investments=" + json.dumps({"route": extra}),
                "--set", "services.investments.image.digest=sha256:" + "b" * 64)
    assert "is already the prefix of service" in err


def test_identity_service_must_be_in_the_release():
    err = fails("--set", "auth.identityService=investments")
    assert 'auth.identityService names "investments", which is not a service of this release' in err
    err = fails("--set-json", "services.identity=null")
    assert 'auth.identityService names "identity", which is not a service of this release' in err


def test_identity_url_is_set_by_the_chart_only():
    err = fails("--set", "services.contact-us.serviceUrls.FINTECH_AUTH__IDENTITY_URL=identity")
    assert "services.contact-us.serviceUrls.FINTECH_AUTH__IDENTITY_URL is set by the chart itself" in err


def test_service_secret_must_be_the_one_identity_checks():
    err = fails("--set", "services.accounts.secretEnv.FINTECH_AUTH__SERVICE_SECRET.secret=other-secret")
    assert "services.identity.secretEnv.FINTECH_IDENTITY__SERVICE_SECRETS__ACCOUNTS reads" in err
    assert "must be the same Secret Manager secret" in err


def test_service_secret_unknown_to_identity_is_refused():
    err = fails("--set", "services.contact-us.secretEnv.FINTECH_AUTH__SERVICE_SECRET.secret=contact-us-service-secret")
    assert "FINTECH_IDENTITY__SERVICE_SECRETS__CONTACT_US is not set" in err


def test_required_setting_is_named():
    err = fails("--set", "gateway.hostname=")
    assert "gateway.hostname is required" in err


def test_database_needs_cloud_sql_range():
    err = fails("--set-json", "networkPolicy.cloudSql.cidrs=[]")
    assert "networkPolicy.cloudSql.cidrs is empty" in err


def test_route_in_service_defaults_is_refused():
    err = fails("--set-json", 'serviceDefaults.route={"pathPrefix":"/","maxBodyBytes":1024,"timeoutSeconds":5}')
    assert "serviceDefaults" in err


def test_default_namespace_is_refused():
    err = fails("--namespace", "default")
    assert "install the release in a namespace of its own" in err


def test_pubsub_prefix_is_required():
    err = fails("--set", "events.pubsubPrefix=")
    assert "events.pubsubPrefix is required" in err


@pytest.mark.parametrize("prefix", ["fintech-stg", "Fintech-stg-", "fintech-stg--", "a-", "fintech-staging-europe-"])
def test_pubsub_prefix_is_terraforms_prefix_and_a_dash(prefix):
    err = fails("--set", f"events.pubsubPrefix={prefix}")
    assert "/events/pubsubPrefix" in err


@pytest.mark.parametrize("name", ["FINTECH_EVENTS__BACKEND", "FINTECH_EVENTS__PUBSUB_EMULATOR"])
def test_event_settings_are_the_charts(name):
    err = fails("--set", f"services.audit.env.{name}=in_process")
    assert f"services.audit.env.{name} is set by the chart itself" in err


def test_bucket_needs_the_bucket_prefix():
    err = fails("--set", "storage.bucketPrefix=")
    assert 'services.contact-us.bucket is "attachments", but storage.bucketPrefix is empty' in err


@pytest.mark.parametrize("prefix", ["fintech-stg", "Fintech-stg-", "fintech-stg--", "a-", "fintech-staging-europe-"])
def test_bucket_prefix_is_terraforms_prefix_and_a_dash(prefix):
    err = fails("--set", f"storage.bucketPrefix={prefix}")
    assert "/storage/bucketPrefix" in err


@pytest.mark.parametrize("bucket", ["Attachments", "a", "attachments.eu", "-attachments"])
def test_bucket_is_a_terraform_bucket_key(bucket):
    err = fails("--set", f"services.contact-us.bucket={bucket}")
    assert "/services/contact-us/bucket" in err


@pytest.mark.parametrize("name", ["FINTECH_STORAGE__BACKEND", "FINTECH_STORAGE__BUCKET", "FINTECH_STORAGE__EMULATOR",
                                  "FINTECH_STORAGE__SIGNING_KEY_FILE", "FINTECH_SMS__PROVIDERS"])
def test_storage_and_sms_settings_are_the_charts(name):
    err = fails("--set", f"services.contact-us.env.{name}=x")
    assert f"services.contact-us.env.{name} is set by the chart itself" in err


@pytest.mark.parametrize("key", ["bucket=attachments", "sms.providers[0]=twilio"])
def test_bucket_and_sms_in_service_defaults_are_refused(key):
    err = fails("--set", f"serviceDefaults.{key}")
    assert "serviceDefaults" in err
