"""The activation call's answers, as the desktop reads them (server scripted)."""
from __future__ import annotations

import pytest

from clients.desktop.keygen import ActivationRefused, request_activation
from clients.desktop.transport import Reply, Unreachable


def answering(reply):
    def post(url, payload):
        post.sent = (url, payload)
        if isinstance(reply, Exception):
            raise reply
        return reply
    return post


def test_the_activation_is_what_keygen_answered():
    post = answering(Reply(200, {}, {"external_user": "12433636_CAS-B", "cas": "B",
                                     "provider": {"cui": "12433636", "name": "SC DEMO"}}))
    activation = request_activation("http://k:8101/", "AAAAA-BBBB-CCCC-DDDD", "B", post=post)
    assert post.sent == ("http://k:8101/v1/activations", {"license_serial": "AAAAA-BBBB-CCCC-DDDD", "cas": "B"})
    assert activation.external_user == "12433636_CAS-B" and activation.provider_name == "SC DEMO"
    assert activation.server == "http://k:8101/"


@pytest.mark.parametrize("reply, key, params", [
    (Reply(403, {}, {"detail": "not accepted"}), "activation_forbidden", {}),
    (Reply(422, {}, {"detail": "bad", "errors": {"cas": "unknown"}}), "activation_invalid",
     {"detail": "bad (cas: unknown)"}),
    (Reply(429, {"retry-after": "300"}, {}), "activation_throttled", {"seconds": 300}),
    (Reply(500), "activation_failed", {"status": 500}),
    (Reply(200, {}, {"unexpected": True}), "activation_failed", {"status": 200}),
])
def test_each_refusal_names_its_message(reply, key, params):
    with pytest.raises(ActivationRefused) as refused:
        request_activation("http://k", "AAAAA-BBBB-CCCC-DDDD", "B", post=answering(reply))
    assert refused.value.key == key and refused.value.params == params


def test_an_unreachable_keygen_says_which_server():
    with pytest.raises(ActivationRefused) as refused:
        request_activation("http://k:1", "AAAAA-BBBB-CCCC-DDDD", "B", post=answering(Unreachable("refused")))
    assert refused.value.key == "activation_unreachable" and refused.value.params["server"] == "http://k:1"
