"""Webhook rules without I/O: which addresses are refused, URL form, retry schedule."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from pepite_api.webhooks.crypto import SecretBox, SecretUnreadableError, new_secret
from pepite_api.webhooks.service import RetryPolicy, delivery_id, judge_response
from pepite_api.webhooks.targets import AllowedTargets, check_url, forbidden_kind


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback: IPv4 127.0.0.1 inside"),
        ("::ffff:10.0.0.1", "private: IPv4 10.0.0.1 inside"),
        ("2002:7f00:1::", "loopback: IPv4 127.0.0.1 inside"),
        ("64:ff9b::a9fe:a9fe", "link-local: IPv4 169.254.169.254 inside"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_forbidden_kind(address: str, kind: str | None) -> None:
    assert forbidden_kind(ipaddress.ip_address(address)) == kind


def test_allowlist_takes_hosts_wildcards_addresses_and_networks() -> None:
    allowed = AllowedTargets.parse(
        ["Hooks.Internal.", "*.corp.example", "127.0.0.1", "[::1]", "10.0.0.0/8", " "]
    )
    assert allowed.allows_host("hooks.internal")
    assert allowed.allows_host("HOOKS.internal.")
    assert allowed.allows_host("a.b.corp.example")
    assert not allowed.allows_host("corp.example")
    assert not allowed.allows_host("evilcorp.example")
    assert allowed.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert not allowed.allows_address(ipaddress.ip_address("127.0.0.2"))
    assert allowed.allows_address(ipaddress.ip_address("::1"))
    assert allowed.allows_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert allowed.allows_address(ipaddress.ip_address("10.200.0.1"))
    assert not allowed.allows_address(ipaddress.ip_address("192.168.0.1"))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com:99999/", "invalid port"),
        ("https:///hook", "no host"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/" + "a" * 2000, "longer than 2000"),
    ],
)
def test_url_form(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_url(url)


def test_a_good_url_passes_unchanged() -> None:
    assert (
        check_url("https://hooks.example.com:8443/p?x=1") == "https://hooks.example.com:8443/p?x=1"
    )


def test_retry_delays_double_up_to_the_cap_and_jitter_only_shortens() -> None:
    policy = RetryPolicy(
        base_s=10, cap_s=3600, jitter=0.1, window=timedelta(hours=24), disable_after_failures=5
    )
    nominal = [policy.delay_s(n, rand=lambda: 0.0) for n in range(1, 12)]
    assert nominal == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
    assert policy.delay_s(1, rand=lambda: 1.0) == pytest.approx(9.0)
    assert policy.delay_s(10_000, rand=lambda: 0.0) == 3600


def test_no_retry_is_scheduled_past_the_window() -> None:
    policy = RetryPolicy(
        base_s=60, cap_s=3600, jitter=0.0, window=timedelta(hours=1), disable_after_failures=5
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    until = now + timedelta(minutes=5)
    assert policy.next_attempt_at(now, 1, until) == now + timedelta(seconds=60)
    assert policy.next_attempt_at(now, 4, until) is None


def test_only_2xx_is_a_success_and_redirects_are_named() -> None:
    assert judge_response(200) is None
    assert judge_response(204) is None
    assert judge_response(301) == "HTTP 301: redirects are not followed"
    assert judge_response(500) == "HTTP 500"


def test_delivery_ids_are_stable_and_distinct() -> None:
    assert delivery_id("e1", "wh_1") == delivery_id("e1", "wh_1")
    assert delivery_id("e1", "wh_1") != delivery_id("e1", "wh_2")
    assert delivery_id("e1", "wh_1").startswith("dlv_")


def test_sealed_secrets_open_only_with_the_same_key() -> None:
    secret = new_secret()
    box = SecretBox("k" * 40)
    sealed = box.seal(secret)
    assert secret not in sealed
    assert box.open(sealed) == secret
    with pytest.raises(SecretUnreadableError, match="PEPITE_SECRETS_KEY"):
        SecretBox("x" * 40).open(sealed)
