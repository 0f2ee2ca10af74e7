"""Translations shared by the gRPC and event adapters: domain values to contract values."""

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from canopy.ingestion.v1 import ingestion_pb2
from services.ingestion.domain.files import FileStatus
from services.ingestion.domain.lockouts import FailureState
from services.ingestion.domain.logins import SftpLogin
from services.ingestion.domain.schedule import ArrivalSchedule

FILE_STATUS = {
    FileStatus.RECEIVED: ingestion_pb2.FILE_STATUS_RECEIVED,
    FileStatus.PROCESSING: ingestion_pb2.FILE_STATUS_PROCESSING,
    FileStatus.LOADED: ingestion_pb2.FILE_STATUS_LOADED,
    FileStatus.PARTIALLY_LOADED: ingestion_pb2.FILE_STATUS_PARTIALLY_LOADED,
    FileStatus.FAILED: ingestion_pb2.FILE_STATUS_FAILED,
    FileStatus.DUPLICATE: ingestion_pb2.FILE_STATUS_DUPLICATE,
    FileStatus.QUARANTINED: ingestion_pb2.FILE_STATUS_QUARANTINED,
}


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def schedule_message(schedule: ArrivalSchedule) -> ingestion_pb2.ArrivalSchedule:
    return ingestion_pb2.ArrivalSchedule(
        expected_by=schedule.expected_by.strftime("%H:%M"), timezone=schedule.timezone
    )


def lockout_message(
    *, kind: str, state: FailureState, login: SftpLogin | None, source_address: str = ""
) -> ingestion_pb2.Lockout:
    message = ingestion_pb2.Lockout(
        kind=kind,
        login_id=str(login.id) if login else "",
        username=login.username if login else "",
        source_address=source_address,
        lockouts=state.lockouts,
    )
    if state.locked_until is not None:
        message.locked_until.CopyFrom(timestamp(state.locked_until))
    return message
