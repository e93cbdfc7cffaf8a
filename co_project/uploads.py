"""Uploaded files are bounded while they arrive, not after they were stored.

Django's own handlers keep a small upload in memory and write a large one to a temporary file,
whatever its size. `BoundedUploadHandler` runs first: it counts each file's bytes as the
multipart parser hands them over and stops the upload once a file passes
`CO_COURSEPACK_MAX_BYTES` (course packs are the only files anyone uploads), before the handlers
after it store more. The view learns why through `upload_refused`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

_REFUSED = "_co_upload_refused"


def upload_refused(request: HttpRequest) -> str | None:
    """Why an upload of this request was stopped (read `request.FILES` first), or None."""
    return getattr(request, _REFUSED, None)


class BoundedUploadHandler(FileUploadHandler):
    def new_file(self, *args: object, **kwargs: object) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        limit = settings.CO_COURSEPACK_MAX_BYTES
        if self.received > limit:
            if self.request is not None:
                setattr(
                    self.request,
                    _REFUSED,
                    f"The file {self.file_name} is larger than {limit} bytes, the most an upload may be; nothing was stored.",
                )
            # Stop reading the body: nothing more of it is stored (the ASGI server bounds the body).
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file
