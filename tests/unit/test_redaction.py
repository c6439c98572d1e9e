"""An API key stays out of error messages and reprs."""

import httpx
import openai

from hag_agent import HAGRunnable
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.context import HAGContext
from hag_agent.redaction import MASK, masked_options, redact

KEY = "sk-unit-0123456789abcdef"


def test_redact_masks_real_secrets_and_leaves_placeholders() -> None:
    assert redact(f"bad key {KEY}!", [KEY]) == f"bad key {MASK}!"
    assert redact("the body was EMPTY", ["EMPTY"]) == "the body was EMPTY"
    assert redact("abc", ["abc"]) == "abc"  # too short to be a key: would mask plain words


def test_masked_options_masks_secret_named_values_only() -> None:
    options = {"api_key": KEY, "apiKey": KEY, "auth_token": KEY, "base_url": "u", "token": ""}
    assert masked_options(options) == {
        "api_key": MASK,
        "apiKey": MASK,
        "auth_token": MASK,
        "base_url": "u",
        "token": "",
    }


def test_reprs_of_the_runnable_and_its_context_mask_the_key() -> None:
    options = {"base_url": "http://127.0.0.1:1/v1", "api_key": KEY}
    hag = HAGRunnable(backend="vllm", backend_options=options)
    context = HAGContext(backend="vllm", backend_options=options)
    for text in (repr(hag), str(hag), repr(context)):
        assert KEY not in text and MASK in text
    assert hag.context["backend_options"]["api_key"] == KEY  # masked in the repr only


def test_a_server_error_quoting_the_key_is_masked() -> None:
    backend = OpenAICompatibleBackend(
        EndpointOptions(base_url="http://127.0.0.1:1/v1", model="m", api_key=KEY)
    )
    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    response = httpx.Response(401, request=request, text=f"Incorrect API key provided: {KEY}")
    error = backend.to_backend_error(openai.AuthenticationError("no", response=response, body=None))
    assert error.status == 401
    assert KEY not in str(error) and f"Incorrect API key provided: {MASK}" in str(error)
