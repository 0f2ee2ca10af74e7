"""Translations shared by the gRPC and event adapters: domain values to contract values."""

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from canopy.ingestion.v1 import ingestion_pb2
from services.ingestion.domain.files import FileStatus

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
