"""The outbox backend: each message becomes an ``.eml`` file, and its link is logged.

The default without ``SMTP_URL`` (development, demos, the test suite): open the newest file in
``PORTAL_DATA_DIR/outbox/`` with any mail client, or copy the link from the log. The files hold
live links, so the folder is private to the portal's OS user.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from email.message import EmailMessage
from pathlib import Path

from portal import clock
from portal.mail.message import Mail, MailError

log = logging.getLogger("portal.mail.outbox")


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = folder / f".{name}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    final = folder / name
    os.replace(tmp, final)  # readers never see half a message
    return final


async def write(message: EmailMessage, mail: Mail, folder: Path) -> Path:
    name = f"{clock.now():%Y%m%dT%H%M%S.%f}-{mail.kind}-{uuid.uuid4().hex[:8]}.eml"
    try:
        path = await asyncio.to_thread(_write, folder, name, message.as_bytes())
    except OSError as exc:
        raise MailError(f"could not write the message to the outbox folder ({exc.strerror or 'error'})") from None
    if mail.link:
        log.info("outbox: %s mail to %s saved as %s; its link: %s", mail.kind, mail.to, path, mail.link)
    else:
        log.info("outbox: %s mail to %s saved as %s", mail.kind, mail.to, path)
    return path
