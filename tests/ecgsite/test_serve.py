"""The web container's daphne (`python -m ecgsite.serve`): what it changes in a request."""

from __future__ import annotations

from unittest import mock

from ecgsite.serve import LimitedWebRequest

BOUNDARY = b"ecgsite-test"


def _multipart(name: str, payload: bytes) -> bytes:
    return (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="images"; filename="' + name.encode() + b'"\r\n'
        b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--" + BOUNDARY + b"--\r\n"
    )


def test_a_multipart_body_is_handed_on_whole_and_not_parsed_a_second_time() -> None:
    # Twisted parses form bodies into request.args unless told not to; daphne passes the raw body
    # to Django, which parses it itself, so that parse only cost time and memory.
    request = LimitedWebRequest(mock.MagicMock())
    body = _multipart("a.png", b"\x89PNG" + bytes(2000))
    request.requestHeaders.setRawHeaders(b"content-type", [b"multipart/form-data; boundary=" + BOUNDARY])
    request.gotLength(len(body))
    request.handleContentChunk(body)

    with mock.patch.object(LimitedWebRequest, "process") as process:
        request.requestReceived(b"POST", b"/api/v1/batches/", b"HTTP/1.1")

    process.assert_called_once()
    assert request.args == {}
    assert request.content.read() == body
