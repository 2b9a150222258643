"""daphne with the request-body ceiling at the connection: `python -m ecgsite.serve <daphne args>`.

Daphne (through Twisted) reads a whole request body, to a temporary file and then into the
application's in-memory queue, before the ASGI application is called, so the application's own
check (ecgsite.request_limits) comes after the memory is spent. Here the request is answered 413
and the connection closed as soon as its Content-Length is seen over
settings.ECGSITE_MAX_REQUEST_BYTES, or, for a chunked body, as soon as that much has arrived.
Twisted's own parse of form bodies, which daphne never reads, is switched off. The same daphne
otherwise: every argument is daphne's.
"""

from __future__ import annotations

from daphne import http_protocol
from daphne.cli import CommandLineInterface

from ecgsite.request_limits import too_large_body


def _limit() -> int:
    from django.conf import settings  # configured by then: daphne imports the application first

    return settings.ECGSITE_MAX_REQUEST_BYTES


class LimitedWebRequest(http_protocol.WebRequest):
    _body_received = 0
    _refused = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Twisted would also parse a form or multipart body into request.args, which daphne
        # never reads: for an upload of 100 scans, a second parse of the whole body.
        self._parsePOSTFormSubmission = False

    def gotLength(self, length: int | None) -> None:
        super().gotLength(length)
        if length is not None and length > _limit():
            self._refuse()

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._body_received += len(data)
        if self._body_received > _limit():
            self._refuse()
            return
        super().handleContentChunk(data)

    def process(self) -> object:
        if self._refused:
            return None
        return super().process()

    def _refuse(self) -> None:
        self._refused = True
        # The request line is all Twisted has parsed so far; it keeps the target on the channel.
        target = getattr(self.channel, "_path", b"/").decode("latin-1")
        content_type, body = too_large_body(target.split("?")[0], _limit())
        head = (
            "HTTP/1.1 413 Content Too Large\r\n"
            f"Content-Type: {content_type.decode()}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.channel.transport.write(head + body)
        self.channel.transport.loseConnection()


def main() -> None:
    # HTTPFactory.buildProtocol builds its requests from this module attribute.
    http_protocol.WebRequest = LimitedWebRequest
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
