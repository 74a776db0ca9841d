"""Uploaded factory files (the admin's import page) never reach the disk in plain text.

Django keeps an upload of up to FILE_UPLOAD_MAX_MEMORY_SIZE in memory and writes a larger one,
as it comes, to a temporary file: for a factory file that is every key and device code in
plain text on the server's disk for the whole import, and after it if the process dies. The
second handler of FILE_UPLOAD_HANDLERS is this one instead of Django's: the larger upload goes
into a keyvault.crypto.SealedFile, encrypted under a key held only in memory.
"""

from __future__ import annotations

import io
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from keyvault.crypto import SealedFile


class SealedUploadedFile(UploadedFile):
    """An upload read back from its sealed file, as any uploaded file is read."""


class SealedFileUploadHandler(FileUploadHandler):
    """Django's TemporaryFileUploadHandler, but the temporary file is sealed."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.sealed = SealedFile()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.sealed.write(raw_data)

    def file_complete(self, file_size: int) -> SealedUploadedFile:
        self.sealed.seek(0)
        return SealedUploadedFile(
            file=io.BufferedReader(self.sealed, buffer_size=1 << 16),
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )

    def upload_interrupted(self) -> None:
        if hasattr(self, "sealed"):
            self.sealed.close()
