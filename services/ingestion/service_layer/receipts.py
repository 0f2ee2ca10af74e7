"""After each load, a receipt (and the rejected rows, if any) goes back into the drop zone, for
the login to download from `receipts/` and `rejects/`."""

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingestion.adapters.db.repositories import Repositories, ZoneDocument
from services.ingestion.adapters.events import builders
from services.ingestion.domain.files import IngestedFile, RowCounts
from services.ingestion.domain.paths import Folder
from services.ingestion.service_layer.ports import Ports, RejectsUnavailable
from services.runtime.context import CallContext
from services.runtime.ids import new_id

log = logging.getLogger(__name__)

RECEIPT_SUFFIX = ".json"
REJECTS_SUFFIX = ".rejects.csv"


@dataclass(frozen=True)
class LoadOutcome:
    """What canonical reported of one load."""

    file_id: uuid.UUID
    status: str
    reason: str
    rows: RowCounts
    completed_at: datetime


def receipt_json(
    file: IngestedFile, outcome: LoadOutcome, rejects_name: str, rejects_note: str = ""
) -> bytes:
    rows = outcome.rows
    receipt = {
        "file": file.name,
        "file_id": str(file.id),
        "sha256": file.sha256,
        "bytes": file.size_bytes,
        "received_at": file.received_at.isoformat(),
        "completed_at": outcome.completed_at.isoformat(),
        "status": outcome.status,
        "reason": outcome.reason,
        "rows": {
            "total": rows.total,
            "loaded": rows.created + rows.updated + rows.unchanged,
            "created": rows.created,
            "updated": rows.updated,
            "unchanged": rows.unchanged,
            "rejected": rows.rejected,
        },
        "rejects_file": f"{Folder.REJECTS.value}/{rejects_name}" if rejects_name else None,
    }
    if rejects_note:
        receipt["rejects_note"] = rejects_note
    return (json.dumps(receipt, indent=2) + "\n").encode()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def write_receipt(
    *,
    ports: Ports,
    session: AsyncSession,
    ctx: CallContext,
    account_id: uuid.UUID,
    outcome: LoadOutcome,
) -> None:
    """Store the receipt and (when rows were rejected) the rejects CSV streamed from
    canonical, and record both in the zone, in the caller's transaction. A failure leaves
    nothing behind, so a redelivery of the event writes them again."""
    repos = Repositories(session)
    file = await repos.files.get(account_id, outcome.file_id)
    if file is None:
        log.warning(
            "load completed for an unknown file",
            extra={"fields": {"file_id": str(outcome.file_id)}},
        )
        return
    kept: list[str] = []
    try:
        rejects_name, rejects_note = "", ""
        documents: list[ZoneDocument] = []
        if outcome.rows.rejected > 0 and ports.rejects is not None:
            document_id = new_id()
            try:
                path, size = await ports.store.write_document(
                    ports.rejects.export(account_id, file.id, correlation_id=ctx.correlation_id),
                    account_id=account_id,
                    dropzone_id=file.dropzone_id,
                    document_id=document_id,
                )
            except RejectsUnavailable as error:
                if not error.permanent:
                    raise  # canonical is down: the event comes again
                log.warning(
                    "receipt written without its rejects: %s",
                    error,
                    extra={"fields": {"file_id": str(file.id)}},
                )
                rejects_note = "the rejected rows could not be exported"
            else:
                rejects_name = file.name + REJECTS_SUFFIX
                kept.append(path)
                documents.append(
                    ZoneDocument(
                        document_id,
                        account_id,
                        file.dropzone_id,
                        file.id,
                        Folder.REJECTS,
                        rejects_name,
                        size,
                        path,
                    )
                )
        receipt_name = file.name + RECEIPT_SUFFIX
        document_id = new_id()
        path, size = await ports.store.write_document(
            _once(receipt_json(file, outcome, rejects_name, rejects_note)),
            account_id=account_id,
            dropzone_id=file.dropzone_id,
            document_id=document_id,
        )
        kept.append(path)
        documents.append(
            ZoneDocument(
                document_id,
                account_id,
                file.dropzone_id,
                file.id,
                Folder.RECEIPTS,
                receipt_name,
                size,
                path,
            )
        )
        for document in documents:
            await repos.documents.add(document)
        await ports.outbox.add(
            session,
            builders.receipt_written(
                file, receipt_name=receipt_name, rejects_name=rejects_name, ctx=ctx
            ),
        )
    except BaseException:
        for path in kept:
            await asyncio.shield(ports.store.remove(path))
        raise
    log.info(
        "receipt written",
        extra={"fields": {"file_id": str(file.id), "rejects": bool(rejects_name)}},
    )
