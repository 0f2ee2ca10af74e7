"""Channels to the other services, opened lazily and closed with the process."""

import grpc

from services.runtime.config import RuntimeConfig


class ServiceChannels:
    """One insecure gRPC channel per peer service (inside the cluster network)."""

    def __init__(self, config: RuntimeConfig) -> None:
        self._addresses = {
            "identity": config.identity_address,
            "tenancy": config.tenancy_address,
            "ingestion": config.ingestion_address,
            "canonical": config.canonical_address,
            "audit": config.audit_address,
        }
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.aio.insecure_channel(
                self._addresses[service],
                options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)],
            )
        return self._channels[service]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
