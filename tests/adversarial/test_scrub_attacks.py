"""The trace scrubber against secrets hidden where a careless recorder would miss them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.openai_realtime.trace import REDACTED, scrub

_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"  # disjoint from the prose and keys below


@pytest.mark.parametrize(
    ("event", "secret"),
    [
        ({"sk-proj-KEYASOBJECTKEY123": {"v": 1}}, "KEYASOBJECTKEY123"),
        ({"headers": {"Authorization": "x", "h": "Basic dXNlcjpodW50ZXIy"}}, "dXNlcjpodW50ZXIy"),
        ({"msg": "key SK-UPPERCASEKEY999"}, "UPPERCASEKEY999"),
        ({"msg": "key sk-ab1"}, "ab1"),
        ({"token": "plaintoken"}, "plaintoken"),
        ({"api_key": "plainapikey"}, "plainapikey"),
        ({"secret": "plainsecret"}, "plainsecret"),
        ({"password": "hunter2"}, "hunter2"),
        ({"Password": "hunter3"}, "hunter3"),
        ({"apiKey": "camelkey"}, "camelkey"),
        ({"accessToken": "cameltoken"}, "cameltoken"),
        ({"m": "Bearer\teyJtab.secret"}, "eyJtab"),
        ({"protocols": ["realtime", "openai-insecure-api-key.sk-subproto77"]}, "subproto77"),
    ],
)
def test_the_scrubber_catches(event: dict[str, Any], secret: str) -> None:
    assert secret not in json.dumps(scrub(event))


def test_prose_and_usage_are_left_alone() -> None:
    event = {
        "text": "a basic idea",
        "usage": {"input_tokens": 5, "output_tokens": 7},
        "delta": base64.b64encode(bytes(range(256)) * 4).decode(),
    }
    assert scrub(event) == event


def test_several_secret_keys_stay_distinct() -> None:
    clean = scrub({"sk-one-aaaaaaaa": 1, "sk-two-bbbbbbbb": 2})
    assert sorted(clean.values()) == [1, 2]
    assert set(clean) == {REDACTED, f"{REDACTED}#2"}


_SECRETS = st.one_of(
    st.builds(
        lambda k, p: f"{p}-{k}",
        st.text(_KEY_CHARS, min_size=1, max_size=40),
        st.sampled_from(["sk", "SK", "Sk"]),
    ),
    st.builds(lambda k: f"ek_{k}", st.text(_KEY_CHARS, min_size=8, max_size=40)),
    st.builds(lambda k: f"Bearer {k}", st.text(_KEY_CHARS, min_size=1, max_size=40)),
    st.builds(
        lambda u, p: "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode(),
        st.text(_KEY_CHARS, max_size=10),
        st.text(_KEY_CHARS, max_size=10),
    ),
)
_PROSE = st.text(" abcdefg.,", max_size=12)


@st.composite
def _hidden(draw: st.DrawFn) -> tuple[Any, str]:
    """A JSON value with one secret somewhere: in a string, as a key, or under a secret field."""
    secret = draw(_SECRETS)
    where = draw(st.sampled_from(["text", "key", "field"]))
    if where == "text":
        leaf: Any = draw(_PROSE) + " " + secret + " " + draw(_PROSE)
    elif where == "key":
        leaf = {secret: None}  # "null": shares no character with a secret
    else:
        field = draw(st.sampled_from(["token", "password", "secret", "api_key", "x-api-key"]))
        leaf = {field: secret}
    for wrap in draw(st.lists(st.sampled_from(["list", "dict"]), max_size=5)):
        leaf = [leaf] if wrap == "list" else {draw(st.sampled_from(["a", "b"])): leaf}
    return leaf, secret


@settings(max_examples=200, deadline=None)
@given(_hidden())
def test_no_hidden_secret_survives(case: tuple[Any, str]) -> None:
    value, secret = case
    text = json.dumps(scrub(value))
    for kept in (REDACTED, "Bearer ", "Basic "):
        text = text.replace(kept, "")
    assert secret.split(" ", 1)[-1] not in text
