"""Webhook rules without I/O: event filters, the retry schedule, which addresses are public,
and how a signed request is built (README "Webhooks")."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from hal.domain.errors import InvalidInput
from hal.domain.rates import parse_retry_schedule
from hal.webhooks.rules import (
    DELIVERED_TYPES,
    UrlNotAllowed,
    check_events,
    check_url,
    is_public_address,
    message_payload,
    parse_retry_after,
    retry_delay,
    should_disable,
    subscribes,
)
from hal.webhooks.send import Claimed, build_request
from hal.webhooks.targets import Target

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_no_events_named_means_every_type_but_event_tracked():
    assert subscribes([], "contact.created")
    assert not subscribes([], "event.tracked")
    assert subscribes(["event.tracked"], "event.tracked")
    assert not subscribes(["event.tracked"], "contact.created")


def test_unknown_event_types_are_refused_naming_their_place():
    with pytest.raises(InvalidInput) as refused:
        check_events(["contact.created", "contact.exploded"])
    assert (refused.value.code, refused.value.field) == ("unknown_event_type", "events[1]")
    assert check_events(["deal.updated", "deal.updated", "contact.created"]) == [
        "deal.updated",
        "contact.created",
    ]
    assert check_events(DELIVERED_TYPES) == list(DELIVERED_TYPES)


def test_the_retry_schedule_is_seconds_before_each_attempt():
    schedule = parse_retry_schedule("0,5,300")
    assert schedule == (0.0, 5.0, 300.0)
    assert retry_delay(schedule, 3) is None  # three attempts made: none left
    for bad in ("", "a,b", "5,-1", "nan", "1,,2"):
        with pytest.raises(ValueError):
            parse_retry_schedule(bad)


@given(
    delays=st.lists(st.floats(0, 40_000), min_size=1, max_size=10),
    made=st.integers(0, 12),
    seed=st.integers(0, 2**32),
)
def test_a_retry_comes_within_twenty_percent_of_its_schedule(delays, made, seed):
    schedule = tuple(delays)
    delay = retry_delay(schedule, made, rng=random.Random(seed))
    if made >= len(schedule):
        assert delay is None
    else:
        assert delay is not None
        assert schedule[made] * 0.8 - 1e-9 <= delay <= schedule[made] * 1.2 + 1e-9


def test_retry_after_is_honoured_up_to_a_day():
    schedule = (0.0, 5.0, 300.0)
    assert retry_delay(schedule, 1, retry_after=120) == 120
    assert retry_delay(schedule, 1, retry_after=10**9) == 86_400
    assert retry_delay(schedule, 3, retry_after=5) is None  # the schedule still ends
    assert parse_retry_after("30", NOW) == 30
    assert parse_retry_after("Sun, 01 Mar 2026 12:01:00 GMT", NOW) == 60
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_five_days_of_failure_disable_an_endpoint():
    assert not should_disable(NOW - timedelta(days=4, hours=23), NOW)
    assert should_disable(NOW - timedelta(days=5), NOW)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "0.0.0.0",
        "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
        "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "ff02::1",
        "not an address",
    ],
)  # fmt: skip
def test_internal_addresses_are_not_public(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_internet_addresses_are_public(address):
    assert is_public_address(address)


def test_only_http_and_https_urls_without_credentials_are_taken():
    assert check_url("https://crm.example.com/hook") == ("https", "crm.example.com", 443)
    assert check_url("http://[::1]:8080/x") == ("http", "::1", 8080)
    refused = [
        "ftp://example.com/",
        "file:///etc/passwd",
        "https://",
        "https://u:p@x.com/",
        "https://x.com:99999/",
        "http://exa mple.com/",
        "https://x.com/" + "a" * 2048,
    ]
    for url in refused:
        with pytest.raises(UrlNotAllowed):
            check_url(url)


def test_the_payload_carries_the_change_time_in_utc():
    payload = message_payload("contact.created", NOW, {"id": 1})
    assert payload == {
        "type": "contact.created",
        "timestamp": "2026-03-01T12:00:00Z",
        "data": {"id": 1},
    }


def claimed(**fields) -> Claimed:
    return Claimed(
        **{
            "message_id": 7,
            "endpoint_id": 1,
            "payload": {"type": "contact.created", "timestamp": "t", "data": {"name": "Zoë"}},
            "attempts": 0,
            "lease": NOW,
            "url": "https://crm.example.com:8443/hook?x=1",
            "secret": SECRET,
            "previous_secret": None,
            "previous_secret_expires_at": None,
            **fields,
        }
    )


def test_a_request_goes_to_the_checked_address_under_the_urls_name():
    client = httpx.AsyncClient()
    target = Target(url="https://crm.example.com:8443/hook?x=1", host="crm.example.com",
                    address="93.184.216.34")  # fmt: skip
    request = build_request(client, claimed(), target, datetime.now(UTC))
    assert str(request.url) == "https://93.184.216.34:8443/hook?x=1"
    assert request.headers["host"] == "crm.example.com:8443"
    assert request.extensions["sni_hostname"] == "crm.example.com"
    assert request.headers["webhook-id"] == "msg_7"
    headers = dict(request.headers)
    assert Webhook(SECRET).verify(request.content, headers)["data"] == {"name": "Zoë"}


def test_during_a_rotation_both_secrets_sign():
    new = "whsec_" + "QUJD" * 8
    message = claimed(
        secret=new, previous_secret=SECRET, previous_secret_expires_at=NOW + timedelta(hours=1)
    )
    target = Target(url=message.url, host="crm.example.com", address=None)
    request = build_request(httpx.AsyncClient(), message, target, NOW)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    later = build_request(httpx.AsyncClient(), message, target, NOW + timedelta(hours=2))
    assert len(later.headers["webhook-signature"].split(" ")) == 1
